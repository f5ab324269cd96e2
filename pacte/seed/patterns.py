"""Learnable patterns planted in the synthetic world, and their ground truth kept apart.

Opt-in (issue #21): `Planted(n, seed=S, now=...)` yields the same customers as
`generate(n, seed=S, now=...)` with three patterns added, each from a random stream
of its own per customer, so the default seed and everything measured on it stay as
they were:

- devices wear out with use: a device is replaced each time its hours of use reach
  the hours its type is rated for, so the unit a customer has now was registered at
  the last replacement, and its telemetry reports `hours_on` (usage per day times the
  days since); past 90% of its rated hours it fails soon (replace, 85% of them), past
  70% it needs a check-up (60%);
- purchases follow others: after product A of `FOLLOWS`, 60% of buyers buy its B
  within 7 to 55 days (20 pairs); a quarter of customers bought some A in the last 45 days;
  where B would come after now, it is what will happen next;
- usage changes before a churn: 5% of customers drift away (nothing in the last 90
  days but two or three support contacts), 6% move to the app, the web or chat (their
  contacts of the last 120 days on it, and two visits there).

`truth` maps each customer id to the actions that will really be right for them,
`(kind, target)` as pacte.predict names them; it is complete once `batches()` has been
consumed, and never reaches a store.
"""

from __future__ import annotations

import dataclasses
import json
import random as _random
from collections.abc import Callable, Iterator
from datetime import datetime

from pacte.clock import to_micros
from pacte.graph.store import Edge, Node, Value, WriteBatch
from pacte.predict.actions import (
    AT_RISK,
    CHANNEL_CHANGE,
    DEVICE_REPLACE,
    DEVICE_SERVICE,
    FOLLOW_UP,
)
from pacte.predict.devices import RATED_HOURS, REPLACE_AT, SERVICE_AT
from pacte.seed.catalogue import catalogue
from pacte.seed.generator import generate

__all__ = ["FOLLOWS", "Planted"]

_DAY_US = 86_400 * 1_000_000
# A -> B: the 20 best sellers are each followed by one of the next 20.
FOLLOWS: dict[str, str] = {a.id: b.id for a, b in zip(catalogue()[:20], catalogue()[20:40],
                                                        strict=True)}
_FOLLOW = 0.6
_RECENT_A = 0.25
_AT_RISK = 0.05
_MOVE = 0.06
_MOVED_TO = ("app", "web", "chat")
_FAIL, _WORN = 0.85, 0.6

Truth = dict[str, set[tuple[str, str]]]


class Planted:
    """The seeded world with its planted patterns; see the module's docstring."""

    def __init__(self, customers: int, *, seed: int = 0, now: datetime,
                 batch_customers: int = 1000) -> None:
        self.truth: Truth = {}
        self._seed = seed
        self._now_us = to_micros(now)
        self._batches = generate(customers, seed=seed, batch_customers=batch_customers,
                                 now=now)

    def batches(self) -> Iterator[WriteBatch]:
        for batch in self._batches:
            yield self._plant(batch)

    def _plant(self, batch: WriteBatch) -> WriteBatch:
        b = _Batch(batch)
        for customer in [n for n in batch.nodes if n.kind == "Customer"]:
            self._customer(customer.id, b)
        return b.planted(batch)

    def _customer(self, cid: str, b: _Batch) -> None:
        """Plant the three patterns in one customer's part of the batch; the draws come
        from the customer's own stream, in a fixed order."""
        rnd = _random.Random(f"pacte-patterns:{self._seed}:{cid}").random
        truth = self.truth.setdefault(cid, set())
        owned = b.by_owner.get(cid, [])
        for device in (n for n in owned if n.kind == "Device"):
            b.changed[device.id], registered = self._wear(device, b.owns[device.id].at,
                                                          rnd, truth)
            b.owns[device.id] = dataclasses.replace(b.owns[device.id], at=registered)
        journey = [n for n in owned if n.kind == "Interaction"]
        added = _Adder(cid, b.nodes, b.edges)
        follow_ups = self._follow(journey, b.about, added, rnd)
        u = rnd()
        if u < _AT_RISK:
            b.drop.update(self._drift_away(journey, added, rnd))
            truth.add((AT_RISK, ""))
            follow_ups.clear()  # they will buy nothing more
        elif u < _AT_RISK + _MOVE:
            truth.add((CHANNEL_CHANGE, self._move(journey, added, b.changed, rnd)))
        truth.update(follow_ups)

    def _follow(self, journey: list[Node], about: dict[str, str], added: _Adder,
                rnd: Callable[[], float]) -> set[tuple[str, str]]:
        """Purchases that follow others; the follow-ups still to come."""
        bought = [(_at(n), about[n.id]) for n in journey
                  if n.props.get("kind") == "purchase" and n.id in about]
        if rnd() < _RECENT_A:
            a = sorted(FOLLOWS)[int(rnd() * len(FOLLOWS))]
            at = self._now_us - int((1 + rnd() * 44) * _DAY_US)
            added.purchase(a, at, "app" if rnd() < 0.5 else "web")
            bought.append((at, a))
        owned_products = {p for _, p in bought}
        follow_ups: set[tuple[str, str]] = set()
        for at, a in sorted(bought):
            b = FOLLOWS.get(a)
            if b is None or rnd() >= _FOLLOW:
                continue
            then = at + int((7 + rnd() * 48) * _DAY_US)
            if then < self._now_us:
                added.purchase(b, then, "web")
                owned_products.add(b)
            elif b not in owned_products:
                follow_ups.add((FOLLOW_UP, b))
        return follow_ups

    def _drift_away(self, journey: list[Node], added: _Adder, rnd: Callable[[], float]
                    ) -> set[str]:
        """Nothing in the last 90 days but support contacts; the interactions to drop."""
        since = self._now_us - 90 * _DAY_US
        drop = {n.id for n in [*journey, *added.nodes] if _at(n) >= since}
        for _ in range(2 + (rnd() < 0.5)):
            added.contact("support", ("phone", "email", "chat")[int(rnd() * 3)],
                          self._now_us - int((1 + rnd() * 49) * _DAY_US))
        return drop

    def _move(self, journey: list[Node], added: _Adder, changed: dict[str, Node],
              rnd: Callable[[], float]) -> str:
        """The last 120 days' contacts on another channel, and two visits there; which."""
        to = _MOVED_TO[int(rnd() * len(_MOVED_TO))]
        since = self._now_us - 120 * _DAY_US
        for n in [*journey, *added.nodes]:
            if _at(n) >= since and n.props.get("kind") != "telemetry":
                changed[n.id] = Node(n.kind, n.id, {**n.props, "channel": to}, n.owner)
        for _ in range(2):
            added.contact("visit", to, self._now_us - int((1 + rnd() * 59) * _DAY_US))
        return to

    def _wear(self, device: Node, registered: int, draw: Callable[[], float],
              truth: set[tuple[str, str]]) -> tuple[Node, int]:
        """The device's current unit, with its hours on, and when it was registered."""
        telemetry = json.loads(str(device.props["telemetry"]))
        per_day = telemetry["usage_minutes_per_day"] / 60
        rated = RATED_HOURS.get(str(device.props["device_type"]), 10**9)
        # Each unit lasts its rated hours; the current one was registered at the last
        # replacement.
        days = (self._now_us - registered) / _DAY_US % (rated / per_day)
        hours = int(per_day * days)
        telemetry["hours_on"] = hours
        worn = Node(device.kind, device.id, {
            **device.props, "telemetry": json.dumps(telemetry, separators=(",", ":"))},
            device.owner)
        share = hours / rated
        if share >= REPLACE_AT:
            if draw() < _FAIL:
                truth.add((DEVICE_REPLACE, device.id))
        elif share >= SERVICE_AT and draw() < _WORN:
            truth.add((DEVICE_SERVICE, device.id))
        return worn, self._now_us - int(days * _DAY_US)


class _Batch:
    """One batch being planted: its nodes and edges, and what the patterns change."""

    def __init__(self, batch: WriteBatch) -> None:
        self.owns = {e.dst: e for e in batch.edges if e.type == "OWNS"}
        self.about = {e.src: e.dst for e in batch.edges if e.type == "ABOUT"}
        self.by_owner: dict[str, list[Node]] = {}
        for n in batch.nodes:
            if n.owner is not None and n.kind in ("Interaction", "Device"):
                self.by_owner.setdefault(n.owner, []).append(n)
        self.drop: set[str] = set()
        self.changed: dict[str, Node] = {}
        self.nodes, self.edges = list(batch.nodes), list(batch.edges)

    def planted(self, batch: WriteBatch) -> WriteBatch:
        drop = self.drop
        nodes = [self.changed.get(n.id, n) for n in self.nodes if n.id not in drop]
        edges = [self.owns.get(e.dst, e) if e.type == "OWNS" else e for e in self.edges]
        if drop:
            edges = [e for e in edges
                     if e.src not in drop and e.dst not in drop and e.id[2:] not in drop]
        return WriteBatch(nodes=nodes, edges=edges, index=list(batch.index))


def _at(interaction: Node) -> int:
    at = interaction.props["occurred_at"]
    assert isinstance(at, int)
    return at


class _Adder:
    """New interactions of one customer, appended to the batch being planted."""

    def __init__(self, customer_id: str, nodes: list[Node], edges: list[Edge]) -> None:
        self._cid = customer_id
        self._all_nodes, self._all_edges = nodes, edges
        self.nodes: list[Node] = []

    def _add(self, kind: str, channel: str, at: int, summary: str,
             product: str | None = None, amount: float | None = None) -> str:
        iid = f"i_p{self._cid[2:]}{len(self.nodes):03d}"
        props: dict[str, Value] = {"channel": channel, "kind": kind, "occurred_at": at,
                                   "event_id": "seed:" + iid, "summary": summary}
        if amount is not None:
            props["amount"] = amount
        node = Node("Interaction", iid, props, self._cid)
        self.nodes.append(node)
        self._all_nodes.append(node)
        self._all_edges.append(Edge("HAD", "h_" + iid, self._cid, iid, at))
        if product is not None:
            self._all_edges.append(Edge("ABOUT", "a_" + iid, iid, product, at))
        return iid

    def purchase(self, product: str, at: int, channel: str) -> None:
        iid = self._add("purchase", channel, at, f"Ordered {product}", product, 20.0)
        self._all_edges.append(Edge("BOUGHT", "b_" + iid, self._cid, product, at,
                                    {"amount": 20.0}))

    def contact(self, kind: str, channel: str, at: int) -> None:
        self._add(kind, channel, at, f"Planted {kind} contact")
