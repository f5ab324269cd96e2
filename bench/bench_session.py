"""The purpose-bound customer-360 read, with enforcement on and off.

The read: profile, the 20 latest interactions (with their products), products
bought, and consents. "On" is the Session under `service` with its audit deferred to
one append per request, as the GraphQL app runs it. "Off" does the same store reads,
decrypts the same fields and builds the same result objects, with no purpose check, no
consent check, no field gating and no audit. Both run over the same 500 sampled
customers in alternating chunks (`harness.paired`), so machine load falls on both
alike. Targets: on/off <= 1.3 at 100k customers, and the cost at 100k over the cost at
10k <= 1.3 (point lookups do not grow with the graph).

The bar is measured with the SQLite store's read cache off on both arms
(`PACTE_READ_CACHE=0`, pacte.graph.read_cache), and the same ratio with the cache on is
printed beside it (`..._read_cache`), with what enforcement costs in microseconds on
both (`customer360_privacy_cost`). Why the bar is the uncached one: the ratio asks what
the door adds to the work of a read. With the cache, the off arm's store reads become
dictionary lookups of rows kept from the previous request, while what the door adds
stays: above all the request's audit entry, appended to the trail before the response
leaves (G6), one durable write per request that no read cache can take away. The
cached ratio then measures that write against a memo, and moves with the cache's hit
rate rather than with the cost of the door; the microseconds the door adds are the
figure to watch there, and they must not grow with the cache.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Callable, Iterator

from bench.harness import Record, figure, paired, ratio, seeded
from pacte.clock import from_micros, to_micros
from pacte.features.products import product_view
from pacte.graph.consent import consent_states, decisions
from pacte.graph.model import NODE_KINDS
from pacte.graph.store import Cursor, Node, encode_cursor, reach
from pacte.graph.views import ConsentView, CustomerView, InteractionView, Page
from pacte.runtime import Pacte

_CUSTOMER_FIELDS = [f.name for f in NODE_KINDS["Customer"].fields]
_INTERACTION_FIELDS = [f.name for f in NODE_KINDS["Interaction"].fields]


def c360_on(rt: Pacte, principal: object) -> Callable[[str], object]:
    def read(cid: str) -> object:
        s = rt.session(principal, "service", defer_audit=True)  # type: ignore[arg-type]
        # As the GraphQL app reads it: one read scope per request (on SQLite a no-op).
        with s.around(cid):
            out = (s.customer(cid), s.interactions(cid, first=20), s.products_of(cid),
                   s.consents(cid))
        s.flush()
        return out
    return read


def c360_off(rt: Pacte) -> Callable[[str], object]:
    """The same read and the same result objects, with nothing checked or audited.

    `measure` checks that both return equal results before timing them.
    """
    store, codec = rt._backend.store, rt._backend.codec

    def read(cid: str) -> object:
        now = to_micros(rt.now())  # consents are read as of now, as the Session does
        node = store.get_nodes([cid])[cid]
        profile = CustomerView(cid, codec.open(node, _CUSTOMER_FIELDS))
        # The store reads the door makes: on SQLite one joined statement per list.
        had = [r for r in reach(store, cid, "HAD", limit=21, then="ABOUT")
               if r[1] is not None]
        # As the door: the twenty rows returned are opened, the one past them tells
        # whether there are more.
        views = [InteractionView(e.dst, cid, from_micros(e.at),
                                 codec.open(inode, _INTERACTION_FIELDS), product, (),
                                 encode_cursor(Cursor(e.at, e.id)))
                 for e, inode, product in had[:20] if inode is not None]
        interactions = Page(views, views[-1].cursor if views else None, len(had) > 20)
        bought: dict[str, Node] = {}
        for _, pnode, _ in reach(store, cid, "BOUGHT"):
            if pnode is not None:
                bought.setdefault(pnode.id, pnode)
        # The views the door builds (a product's is kept with its node, see
        # pacte.features.products.product_view): the same objects, at the same cost.
        bought_views = [product_view(n) for n in bought.values()]
        states = consent_states(store.edges(cid, "CONSENTED"), at=now)
        consents = [ConsentView(d.purpose, st.status.value, from_micros(st.at),
                                None if st.until is None else from_micros(st.until),
                                st.source, st.policy_version, st.purpose)
                    for d in decisions(rt._backend.policy, states) if (st := d.by) is not None]
        return profile, interactions, bought_views, consents
    return read


@contextlib.contextmanager
def _read_cache(on: bool) -> Iterator[None]:
    """Stores opened in the block keep their reads (the default) or not."""
    before = os.environ.get(_READ_CACHE_ENV)
    if on:
        os.environ.pop(_READ_CACHE_ENV, None)
    else:
        os.environ[_READ_CACHE_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(_READ_CACHE_ENV, None)
        else:
            os.environ[_READ_CACHE_ENV] = before


# pacte.graph.read_cache.ENV: how many rows the SQLite store's read cache keeps (0: off).
_READ_CACHE_ENV = "PACTE_READ_CACHE"


def measure(customers: int, *, sample: int, read_cache: bool = False) -> tuple[float, float]:
    with _read_cache(read_cache):
        rt = Pacte.open(seeded(customers, seed=11))
    with rt:
        principal, _ = rt.create_principal(name="bench", role="app", purposes=["service"])
        ids = [n.id for n in rt._backend.store.scan_nodes("Customer", limit=customers)]
        chosen = random.Random(7).sample(ids, min(sample, len(ids)))
        on, off = c360_on(rt, principal), c360_off(rt)
        for cid in chosen[:50]:  # warm caches on both paths, and check they agree
            if on(cid) != off(cid):
                raise AssertionError(f"the on and off reads of {cid} differ")
        return paired(on, off, chosen)


def run(quick: bool) -> list[Record]:
    small, large = (2_000, 10_000) if quick else (10_000, 100_000)
    sample = 200 if quick else 500
    on_s, off_s = measure(small, sample=sample)
    on_l, off_l = measure(large, sample=sample)
    on_c, off_c = measure(large, sample=sample, read_cache=True)
    return [
        figure("customer360_on_latency", on_l * 1e3, unit="ms", size=large),
        figure("customer360_off_latency", off_l * 1e3, unit="ms", size=large),
        ratio("customer360_on_vs_off", on_l, off_l,
              numerator_label="Session (purpose, consent, gating, audit)",
              denominator_label="same reads and decryption, no enforcement",
              size=large, target="<= 1.3"),
        ratio("customer360_on_vs_off_small", on_s, off_s,
              numerator_label="Session", denominator_label="no enforcement",
              size=small, target="<= 1.3"),
        ratio("customer360_large_vs_small", on_l, on_s,
              numerator_label=f"cost at {large} customers",
              denominator_label=f"cost at {small} customers", size=f"{small}->{large}",
              target="<= 1.3"),
        figure("customer360_privacy_cost", (on_l - off_l) * 1e6, unit="us", size=large),
        # Informational (see the module): the same with the store's read cache on.
        ratio("customer360_on_vs_off_read_cache", on_c, off_c,
              numerator_label="Session, store read cache on",
              denominator_label="no enforcement, store read cache on", size=large),
        figure("customer360_privacy_cost_read_cache", (on_c - off_c) * 1e6, unit="us",
               size=large),
    ]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
