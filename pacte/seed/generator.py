"""Reproducible synthetic customers, as plaintext write batches.

Determinism and flat memory come from one rule: customer number k is a pure
function of (seed, k). Customers are drawn from a random stream reseeded every
`CHUNK` customers (`Random("pacte-seed:<seed>:<chunk>")`), ids are counters
tagged by the seed (see `ids`), and a referral points to an earlier customer whose
join date is recomputed from its number rather than remembered. So:

- the same arguments give the same batches, byte for byte;
- `batch_customers` only changes how customers are grouped into batches, never
  what they are, and `generate(n)` is a prefix of `generate(m)` for n < m;
- nothing but the batch being built is held, whatever the number of customers.

Values are plaintext `str`: the layer above seals personal fields and computes
blind-index entries before anything reaches a store.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import math
import random as _random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from pacte.clock import from_micros, to_micros
from pacte.graph.store import Edge, Node, Value, WriteBatch
from pacte.seed.catalogue import Product, catalogue, product_nodes
from pacte.seed.consents import consent_edges
from pacte.seed.ids import COUNTER_LIMIT, id_base, id_maker
from pacte.seed.pools import (
    AREA_CODES,
    CITIES,
    FIRST_NAMES,
    LAST_NAMES,
    SEGMENTS,
    STREET_SUFFIXES,
    STREETS,
)
from pacte.seed.texts import (
    PLAIN_MODE,
    PURCHASE_MODE,
    REVIEW_MODE,
    SITUATIONS,
    SITUATIONS_WITH_DEVICES,
    TELEMETRY_MODE,
)

__all__ = ["CHUNK", "MEAN_INTERACTIONS", "generate"]

CHUNK = 256  # customers per random stream
MEAN_INTERACTIONS = 15.0
_MAX_INTERACTIONS = 63  # interaction ids reserve 64 counters per customer
_DEVICE_SHARE = 0.30
_REFERRAL_TRIES = 0.20  # about half succeed: the referrer must have joined first

_DAY_US = 86_400 * 1_000_000
_HISTORY_US = 730 * _DAY_US  # interactions happen within the last two years
_JOINED_US = 5 * 365 * _DAY_US  # customers joined within the last five years

_FIRST = tuple((n, n.lower()) for n in FIRST_NAMES)
_LAST = tuple((n, n.lower()) for n in LAST_NAMES)
# kWh a device of each type uses in 30 days, roughly.
_ENERGY = {"smart_bulb": 2.5, "light_strip": 3.0, "thermostat": 1.5, "radiator_valve": 0.4,
           "speaker": 4.0, "camera": 3.5, "doorbell": 1.8, "smart_plug": 0.8,
           "energy_meter": 0.5}
_TELEMETRY = ('{"usage_minutes_per_day":%d,"times_of_use":["%02d:00-%02d:00",'
              '"%02d:00-%02d:00"],"energy_kwh_30d":%.2f}')


def _poisson_table(mean: float, size: int) -> tuple[int, ...]:
    """Inverse CDF of Poisson(mean) at `size` evenly spaced quantiles: one draw, one index."""
    cdf: list[float] = []
    p = math.exp(-mean)
    total = 0.0
    for k in range(_MAX_INTERACTIONS + 1):
        total += p
        cdf.append(total)
        p *= mean / (k + 1)
    return tuple(min(bisect.bisect_left(cdf, (i + 0.5) / size), _MAX_INTERACTIONS)
                 for i in range(size))


_COUNTS = _poisson_table(MEAN_INTERACTIONS, 4096)


def generate(
    customers: int,
    *,
    seed: int = 0,
    batch_customers: int = 1000,
    now: datetime,
) -> Iterator[WriteBatch]:
    """Batches of `batch_customers` customers with everything they own; the product
    catalogue comes in the first batch. Consents point at purpose ids, whose nodes the
    caller writes from its policy."""
    if isinstance(customers, bool) or not isinstance(customers, int) or customers < 0:
        raise ValueError("customers must be a whole number >= 0")
    if customers > COUNTER_LIMIT // 64:
        raise ValueError(f"at most {COUNTER_LIMIT // 64} customers (interaction ids run out)")
    if isinstance(batch_customers, bool) or not isinstance(batch_customers, int) \
            or batch_customers < 1:
        raise ValueError("batch_customers must be a whole number >= 1")
    # Checked here rather than in the generator below, so bad arguments fail at the call.
    return _batches(_World(seed=seed, now_us=to_micros(now)), customers, batch_customers)


def _batches(world: _World, customers: int, batch_customers: int) -> Iterator[WriteBatch]:
    random: Callable[[], float] = _random.random
    # max(.., 1): with no customers the catalogue still comes, alone.
    for start in range(0, max(customers, 1), batch_customers):
        batch = WriteBatch(nodes=product_nodes(world.products) if start == 0 else [])
        with _gc_paused():
            for k in range(start, min(customers, start + batch_customers)):
                if k % CHUNK == 0:
                    random = _random.Random(f"pacte-seed:{world.seed}:{k // CHUNK}").random
                world.customer(k, random, batch.nodes, batch.edges)
        yield batch


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while one batch is built, never while the caller runs.

    A batch is tens of thousands of new objects that stay alive, so the collector
    keeps rescanning them and costs about a fifth of generation time; they hold no
    reference cycles, so nothing is left for it to find. Reference counting still
    frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _World:
    """What every customer of one `generate` call shares: time, pools, id makers."""

    def __init__(self, *, seed: int, now_us: int) -> None:
        self.seed = seed
        self.now_us = now_us
        self.now_year = from_micros(now_us).year
        self.products: tuple[Product, ...] = catalogue()
        self.devices: tuple[Product, ...] = tuple(p for p in self.products if p.device_type)
        self.customer_id = id_maker("c", seed)
        self._interaction_base = id_base(seed)
        # Prices in cents, so an amount is one exact division rather than a round().
        self._products = tuple((p.id, p.name, round(p.price * 100)) for p in self.products)
        self.device_id = id_maker("d", seed)
        self.consent_id = id_maker("k", seed)
        self._joined_key = hashlib.sha256(f"joined:{seed}".encode()).digest()

    def joined(self, k: int) -> int:
        """When customer k joined: a pure function of k, so referrals can look back."""
        h = hashlib.blake2b(k.to_bytes(8, "big"), key=self._joined_key, digest_size=6)
        offset = int.from_bytes(h.digest(), "big") * (_JOINED_US - _DAY_US) >> 48
        return self.now_us - _DAY_US - offset

    def customer(self, k: int, random: Callable[[], float], nodes: list[Node],
                 edges: list[Edge]) -> None:
        """Append customer k, its devices, interactions, consents and referral."""
        now = self.now_us
        cid = self.customer_id(k)
        created = self.joined(k)
        first, first_l = _FIRST[int(random() * len(_FIRST))]
        last, last_l = _LAST[int(random() * len(_LAST))]
        city, state, lat, lon, zip3 = CITIES[int(random() * len(CITIES))]
        age = 18 + int(random() * 70)
        nodes.append(Node("Customer", cid, {
            "name": f"{first} {last}",
            # The customer number makes emails unique; example.com is reserved (RFC 2606).
            "email": f"{first_l}.{last_l}{k}@example.com",
            "phone": f"+1{AREA_CODES[int(random() * len(AREA_CODES))]}55501"
                     f"{int(random() * 100):02d}",
            "address": f"{1 + int(random() * 9899)} {STREETS[int(random() * len(STREETS))]} "
                       f"{STREET_SUFFIXES[int(random() * len(STREET_SUFFIXES))]}, {city}, "
                       f"{state} {zip3}{int(random() * 100):02d}",
            "birth_date": f"{self.now_year - age:04d}-{1 + int(random() * 12):02d}-"
                          f"{1 + int(random() * 28):02d}",
            "segment": SEGMENTS[int(random() * len(SEGMENTS))],
            "created_at": created,
        }, cid))

        edges.extend(consent_edges(cid, k * 16, created_at=created, now_us=now,
                                   random=random, make_id=self.consent_id))
        if k and random() < _REFERRAL_TRIES:
            referrer = int(random() * k)
            if self.joined(referrer) < created:
                edges.append(Edge("REFERRED", "f_" + cid, self.customer_id(referrer), cid,
                                  created))

        owned: list[Product] = []
        if random() < _DEVICE_SHARE:
            u = random()
            for j in range(1 + (u > 0.6) + (u > 0.9)):
                owned.append(self._device(k, j, cid, lat, lon, created, random, nodes, edges))

        self._interactions(k, cid, created, owned, random, nodes, edges)

    def _device(self, k: int, j: int, cid: str, lat: float, lon: float, created: int,
                random: Callable[[], float], nodes: list[Node], edges: list[Edge]) -> Product:
        product = self.devices[int(random() * len(self.devices))]
        did = self.device_id(k * 4 + j)
        morning, evening = 6 + int(random() * 3), 17 + int(random() * 4)
        energy = _ENERGY.get(product.device_type, 1.0) * (0.5 + random())
        nodes.append(Node("Device", did, {
            "device_type": product.device_type,
            "model": product.name,
            # Home location, blurred by up to ~5 km, as a "lat,lon" string.
            "location": f"{lat + (random() - 0.5) * 0.09:.5f},{lon + (random() - 0.5) * 0.09:.5f}",
            "telemetry": _TELEMETRY % (
                30 + int(random() * 300), morning, morning + 1 + int(random() * 2),
                evening, evening + 1 + int(random() * 3), energy),
        }, cid))
        edges.append(Edge("OWNS", "o_" + did, cid, did, created + int(random() * _DAY_US)))
        return product

    def _interactions(self, k: int, cid: str, created: int, owned: list[Product],
                      random: Callable[[], float], nodes: list[Node],
                      edges: list[Edge]) -> None:
        # The hot loop of seeding (15 of these per customer): one draw picks kind,
        # channel, template and mode together, ids are formatted inline, and attribute
        # lookups are hoisted, which together keep generation well ahead of sealing.
        now = self.now_us
        start = max(created, now - _HISTORY_US)
        span = now - start
        table = SITUATIONS_WITH_DEVICES if owned else SITUATIONS
        n_table = len(table)
        products = self._products
        n_products = len(products)
        mine = [(p.id, p.name, round(p.price * 100)) for p in owned]
        id_base = self._interaction_base | k * 64
        add_node, add_edge = nodes.append, edges.append
        for j in range(_COUNTS[int(random() * len(_COUNTS))]):
            kind, channel, template, mode, rating = table[int(random() * n_table)]
            at = start + int(random() * span)
            ref = 100_000 + int(random() * 900_000)
            iid = f"i_{id_base | j:012x}"
            props: dict[str, Value] = {"channel": channel, "kind": kind, "occurred_at": at,
                                       "event_id": "seed:" + iid}
            add_node(Node("Interaction", iid, props, cid))
            add_edge(Edge("HAD", "h_" + iid, cid, iid, at))
            if mode == PLAIN_MODE:
                props["summary"] = template % ref
                continue
            if mode == TELEMETRY_MODE:
                pid, name, cents = mine[int(random() * len(mine))]
            else:
                # A product of two draws skews popularity: early catalogue entries sell most.
                pid, name, cents = products[int(random() * random() * n_products)]
            props["summary"] = template % (name, ref)
            add_edge(Edge("ABOUT", "a_" + iid, iid, pid, at))
            if mode == PURCHASE_MODE:
                u = random()
                amount = cents * (1 + (u > 0.8) + (u > 0.95)) / 100
                props["amount"] = amount
                add_edge(Edge("BOUGHT", "b_" + iid, cid, pid, at, {"amount": amount}))
            elif mode == REVIEW_MODE:
                add_edge(Edge("REVIEWED", "v_" + iid, cid, pid, at, {"rating": rating}))
