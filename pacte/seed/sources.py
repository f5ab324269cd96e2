"""The synthetic world as the separate exports real systems would produce (issue #17).

`write_sources(dir, customers=N, seed=S, now=...)` writes, from the same people as
`pacte seed`:

    crm_customers.csv         CRM: `;`-separated with a BOM; CRM ids, names, emails,
                              phones (households share one), loyalty cards
    shop_orders.csv           web shop: one row per order line, `;` and decimal commas,
                              emails in any case and with stray spaces, buyer names
                              with typos (not used for matching)
    store_pos.csv             store tills: receipts by loyalty card, a phone written
                              the local way, or an e-receipt email
    app_tracker_events.jsonl  web/app tracker: nested fields; a login event ties an
                              app install or a paired IoT device to the email
    iot_platform.jsonl        IoT platform: devices (paired by email, or by an app
                              login) and their readings

and `ground-truth/identities.csv` (outside the source files): for each record, the
person it belongs to and a key to find it in the graph. People outside the CRM shop
with an email only; some change phone numbers between systems.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from pacte.clock import from_micros
from pacte.graph.store import Node, WriteBatch
from pacte.seed.generator import generate

__all__ = ["SOURCE_FILES", "TRUTH_FILE", "write_sources"]

SOURCE_FILES = ("crm_customers.csv", "shop_orders.csv", "store_pos.csv",
                "app_tracker_events.jsonl", "iot_platform.jsonl")
TRUTH_FILE = Path("ground-truth") / "identities.csv"
_IN_CRM = 0.9
_LOYALTY = 0.6
_HOUSEHOLD = 0.05
_NEW_PHONE = 0.05
_PAIRED_BY_APP = 0.3
_READINGS = 3


class _Writers:
    def __init__(self, root: Path, stack: ExitStack) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / TRUTH_FILE).parent.mkdir(parents=True, exist_ok=True)

        def opened(name: str | Path, *, bom: bool = False) -> Any:
            return stack.enter_context(open(root / name, "w", encoding="utf-8-sig" if bom
                                            else "utf-8", newline=""))

        self.crm = csv.writer(opened("crm_customers.csv", bom=True), delimiter=";")
        self.crm.writerow(["customer_id", "name", "email", "phone", "birth_date", "segment",
                           "loyalty_card"])
        self.shop = csv.writer(opened("shop_orders.csv"), delimiter=";")
        self.shop.writerow(["order_id", "line", "email", "buyer_name", "product",
                            "quantity", "amount", "ordered_at", "channel"])
        self.pos = csv.writer(opened("store_pos.csv"))
        self.pos.writerow(["order_id", "line", "loyalty_card", "phone", "email", "product",
                           "amount", "ordered_at", "channel"])
        self.tracker = opened("app_tracker_events.jsonl")
        self.iot = opened("iot_platform.jsonl")
        self.truth = csv.writer(opened(TRUTH_FILE))
        self.truth.writerow(["file", "line", "person", "key_kind", "key"])
        self.lines = dict.fromkeys(SOURCE_FILES, 1)  # the header is line 1 of a CSV
        self.lines["app_tracker_events.jsonl"] = 0
        self.lines["iot_platform.jsonl"] = 0

    def row(self, file: str, person: str, key_kind: str, key: str) -> None:
        self.lines[file] += 1
        self.truth.writerow([file, self.lines[file], person, key_kind, key])


def write_sources(root: Path | str, *, customers: int, seed: int = 0, now: datetime
                  ) -> dict[str, int]:
    """Write the five exports and the ground truth; rows written per file."""
    rnd = random.Random(f"pacte-sources:{seed}")
    with ExitStack() as stack:
        w = _Writers(Path(root), stack)
        previous_phone: str | None = None
        for person in _people(generate(customers, seed=seed, now=now)):
            previous_phone = _person(w, rnd, person, previous_phone)
        return {f: n - (1 if f.endswith(".csv") else 0) for f, n in w.lines.items()}


class _Person:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.interactions: list[Node] = []
        self.products: dict[str, str] = {}  # interaction id -> product id
        self.devices: list[Node] = []


def _people(batches: Iterator[WriteBatch]) -> Iterator[_Person]:
    for batch in batches:
        people: dict[str, _Person] = {}
        owner_of: dict[str, _Person] = {}
        for n in batch.nodes:
            if n.kind == "Customer":
                people[n.id] = _Person(n)
            elif n.kind == "Interaction" and n.owner in people:
                people[n.owner].interactions.append(n)
                owner_of[n.id] = people[n.owner]
            elif n.kind == "Device" and n.owner in people:
                people[n.owner].devices.append(n)
        for e in batch.edges:
            if e.type == "ABOUT" and e.src in owner_of:
                owner_of[e.src].products[e.src] = e.dst
        yield from people.values()


def _iso(us: object) -> str:
    assert isinstance(us, int)
    return from_micros(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def _typo(name: str, rnd: random.Random) -> str:
    if len(name) < 4 or rnd.random() > 0.3:
        return name
    i = rnd.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2:]


def _local_phone(phone: str, rnd: random.Random) -> str:
    digits = phone[2:]  # +1 numbers
    style = rnd.randrange(3)
    if style == 0:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if style == 1:
        return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"
    return f"1 {digits[:3]} {digits[3:6]} {digits[6:]}"


def _messy_email(email: str, rnd: random.Random) -> str:
    u = rnd.random()
    return email.upper() if u < 0.1 else f" {email} " if u < 0.2 else email


class _Identity:
    """How the systems know one person: what each record of theirs may carry."""

    def __init__(self, p: _Person, rnd: random.Random, previous_phone: str | None) -> None:
        self.pid = pid = p.node.id
        props = p.node.props
        self.email, self.name = str(props["email"]), str(props["name"])
        phone = str(props["phone"])
        if previous_phone is not None and rnd.random() < _HOUSEHOLD:
            phone = previous_phone  # a housemate: same landline, own email
        self.phone = phone
        self.in_crm = rnd.random() < _IN_CRM
        self.crm_id = f"CRM-{int(pid[2:], 16) % 10**10:010d}-{pid[-4:]}"
        self.loyalty = f"LC {rnd.randrange(10**8):08d}" \
            if self.in_crm and rnd.random() < _LOYALTY else None
        self.store_phone = phone if rnd.random() > _NEW_PHONE else \
            f"+1{rnd.randrange(200, 999)}555{rnd.randrange(10**4):04d}"  # a new number
        self.app_serial = f"APP-{pid[2:]}"
        self.logged_in = False
        self.orders = 0


def _person(w: _Writers, rnd: random.Random, p: _Person, previous_phone: str | None
            ) -> str:
    who = _Identity(p, rnd, previous_phone)
    if who.in_crm:
        props = p.node.props
        w.crm.writerow([who.crm_id, who.name, who.email, who.phone, props["birth_date"],
                        props["segment"], who.loyalty or ""])
        w.row("crm_customers.csv", who.pid, "crm", who.crm_id)
    for inter in sorted(p.interactions, key=lambda n: (n.props["occurred_at"], n.id)):
        kind = str(inter.props["kind"])
        product = p.products.get(inter.id)
        if kind == "purchase" and product is not None:
            _order(w, rnd, who, inter, product)
        elif kind != "telemetry":  # the IoT platform's readings stand for telemetry
            _event(w, rnd, who, inter, product)
    for dev in p.devices:
        _device(w, rnd, who, dev)
    return who.phone


def _order(w: _Writers, rnd: random.Random, who: _Identity, inter: Node, product: str
           ) -> None:
    ip = inter.props
    channel, at = str(ip["channel"]), ip["occurred_at"]
    pid = who.pid
    who.orders += 1
    paid = ip.get("amount")
    amount = f"{paid if isinstance(paid, int | float) else 0:.2f}"
    if channel == "store":
        receipt = f"R-{pid[2:]}-{who.orders}"
        # A till knows the loyalty card, else the phone, else an e-receipt email.
        card = who.loyalty or ""
        tel = _local_phone(who.store_phone, rnd) if not card and who.in_crm else ""
        mail = who.email if not card and not tel else ""
        w.pos.writerow([receipt, 1, card, tel, mail, product, amount, _iso(at), "store"])
        w.row("store_pos.csv", pid, "order", f"{receipt}:1")
    else:
        oid = f"SO-{pid[2:]}-{who.orders}"
        w.shop.writerow([oid, 1, _messy_email(who.email, rnd), _typo(who.name, rnd),
                         product, 1, amount.replace(".", ","), _iso(at),
                         channel if channel in ("web", "app") else "web"])
        w.row("shop_orders.csv", pid, "order", f"{oid}:1")


def _event(w: _Writers, rnd: random.Random, who: _Identity, inter: Node,
           product: str | None) -> None:
    ip = inter.props
    channel = str(ip["channel"])
    event: dict[str, Any] = {"type": "event", "event_id": f"T-{inter.id[2:]}",
                             "channel": channel, "kind": str(ip["kind"]),
                             "ts": _iso(ip["occurred_at"]),
                             "page": {"path": f"/p/{product or 'home'}"}}
    if channel == "app":
        if not who.logged_in:
            event["type"] = "login"
            event["user"] = {"email": who.email}
            who.logged_in = True
        event["device"] = {"serial": who.app_serial}
    elif who.in_crm and channel in ("phone", "chat", "store"):
        event["user"] = {"customer_id": who.crm_id}  # the call centre knows the CRM id
    else:
        event["user"] = {"email": _messy_email(who.email, rnd)}
    if product is not None:
        event["product"] = product
    w.tracker.write(json.dumps(event) + "\n")
    w.row("app_tracker_events.jsonl", who.pid, "event", str(event["event_id"]))


def _device(w: _Writers, rnd: random.Random, who: _Identity, dev: Node) -> None:
    serial = f"IOT-{dev.id[2:]}"
    dp = dev.props
    if rnd.random() < _PAIRED_BY_APP:
        # Paired in the app: the tracker's login ties the device to the email.
        pairing = {"type": "login", "event_id": f"PAIR-{dev.id[2:]}", "channel": "app",
                   "kind": "visit", "ts": "2026-01-01T00:00:00Z",
                   "user": {"email": who.email}, "device": {"serial": serial}}
        w.tracker.write(json.dumps(pairing) + "\n")
        w.row("app_tracker_events.jsonl", who.pid, "event", str(pairing["event_id"]))
    else:
        w.iot.write(json.dumps({"type": "device", "device_serial": serial,
                                "email": who.email, "device_type": dp["device_type"],
                                "model": dp["model"], "location": dp["location"]}) + "\n")
        w.row("iot_platform.jsonl", who.pid, "device", serial)
    for r in range(_READINGS):
        reading = {"type": "reading", "event_id": f"RD-{dev.id[2:]}-{r}",
                   "device_serial": serial, "at": f"2026-01-0{r + 2}T08:00:00Z",
                   "reading": {"minutes": 30 + r * 7, "energy_kwh": round(0.1 * r, 2)}}
        w.iot.write(json.dumps(reading) + "\n")
        w.row("iot_platform.jsonl", who.pid, "event", str(reading["event_id"]))
