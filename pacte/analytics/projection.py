"""The analyst's projection: a k-anonymous release of the consenting customers (G9, G10).

`build_projection` reads only through `Session.project()`, so the session decides
who is in it (customers with an active `analytics` consent), which fields are
opened (those the purpose may use) and audits every batch. Here the real customer
ids are replaced by pseudonyms, HMACs under a random key drawn for this projection
and then dropped, so two projections cannot be joined on their customer nodes.

From those rows it builds a **detailed graph** (a `networkx.MultiDiGraph`), one
node per customer, product, channel, segment and device type, told apart by their
`kind` attribute:

    customer:<pseudonym>   kind=customer, segment, age_band (when present)
    product:<id>           kind=product,  label (the product's name), category
    channel:<name>         kind=channel,  label
    segment:<name>         kind=segment,  label
    device:<type>          kind=device,   label

and edges told apart by `rel`, from a customer to:

    product   rel=bought      at (datetime), amount (when known)
    product   rel=reviewed    at, rating (when known)
    channel   rel=interacted  at, interaction (purchase, support, ...), product (node id)
    device    rel=owns
    segment   rel=member_of
    customer  rel=referred

Customer nodes never carry a name, contact, address, birth date, raw id, creation
time or ciphertext: only `segment` and `age_band`, the two attributes the
`analytics` purpose allows. Still, exact times, amounts and edge sets single most
customers out, so the detailed graph is not what the analyst gets:

- `Projection.graph` (and `nodes`, `edges`, `customers`) is its **k-anonymous
  release** (`pacte.analytics.anonymity`): every customer record identical to at
  least `k - 1` others, months instead of dates, amount bands instead of amounts;
  `Projection.anonymity` says what it achieved (smallest class, suppression rate);
- the detailed graph stays a private attribute of the projection, read by the
  analyses of `pacte.analytics` (pacte's own code) through `_detail`, and by them
  only: they return aggregates over distinct customers in which no group of fewer
  than `k` (at least 5) appears (`pacte.analytics.suppress`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import networkx as nx

from pacte.analytics.anonymity import Anonymity, Release, release_of
from pacte.analytics.nodes import CUSTOMER, KINDS, node_id, pseudonym
from pacte.analytics.suppress import K_DEFAULT
from pacte.clock import Clock, utcnow
from pacte.errors import InputError
from pacte.graph.views import ProductView, ProjectedCustomer

__all__ = [
    "CUSTOMER",
    "KINDS",
    "ProductCatalogue",
    "Projection",
    "ProjectionSource",
    "anonymise",
    "build_projection",
    "node_id",
    "pseudonym",
]

# The customer attributes the analytics purpose allows; anything else is dropped.
_CUSTOMER_ATTRS = ("segment", "age_band")
_KEY_BYTES = 32


class ProjectionSource(Protocol):
    """What `build_projection` needs: a session's `project()` (see `pacte.graph.session`)."""

    def project(self, *, batch: int = ...) -> Iterator[list[ProjectedCustomer]]: ...


@runtime_checkable
class ProductCatalogue(Protocol):
    """A session's `product()`: when the source has it, product nodes get names."""

    def product(self, product_id: str) -> ProductView | None: ...


class Projection:
    """What an analyst holds: the k-anonymous release, and when and how it was built.

    `graph` is the release of the detailed graph at `k` (see the module doc), with
    `anonymity` saying what it achieved. The detailed graph is kept in a private
    slot for the analyses of `pacte.analytics` (`_detail`); nothing public reaches it.

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(5)])
    >>> p.nodes("product"), p.customers, p.anonymity.achieved
    (['product:lamp'], 5, 5)
    >>> sorted(p.edges(p.nodes("customer")[0], "bought")[0])  # a month, a band: no date
    ['amount_band', 'dst', 'months', 'rel']
    """

    __slots__ = ("_built_at", "_detail_graph", "_purpose", "_release")

    def __init__(self, detail: nx.MultiDiGraph, built_at: datetime, *,
                 purpose: str = "analytics", k: int = K_DEFAULT) -> None:
        self._detail_graph = detail
        self._built_at = built_at
        self._purpose = purpose
        self._release = release_of(detail, k=k, purpose=purpose, built_at=built_at)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The k-anonymous release: one generalised record per released customer."""
        return self._release.graph

    @property
    def anonymity(self) -> Anonymity:
        """What the release achieved: k asked, smallest class, suppression rates."""
        return self._release.anonymity

    @property
    def built_at(self) -> datetime:
        return self._built_at

    @property
    def purpose(self) -> str:
        return self._purpose

    def nodes(self, kind: str) -> list[str]:
        """The node ids of one kind in the release, sorted."""
        if kind not in KINDS:
            raise InputError(f"unknown node kind {kind!r}; one of {', '.join(KINDS)}")
        return sorted(n for n, k in self.graph.nodes(data="kind") if k == kind)

    @property
    def customers(self) -> int:
        """How many customer records the release holds (`anonymity.customers`: projected)."""
        return sum(1 for _, k in self.graph.nodes(data="kind") if k == CUSTOMER)

    def edges(self, node: str, rel: str) -> list[dict[str, Any]]:
        """The attributes of `node`'s outgoing edges of one relation, each with its `dst`."""
        return [{**data, "dst": dst} for _, dst, data in self.graph.out_edges(node, data=True)
                if data.get("rel") == rel]

    def __repr__(self) -> str:
        return (f"Projection(purpose={self._purpose!r}, built_at={self._built_at!r}, "
                f"customers={self.customers}, k={self.anonymity.k})")


def _detail(projection: Projection) -> nx.MultiDiGraph:
    """The detailed pseudonymised graph inside `projection` (exact dates, amounts, edges).

    For the analyses of `pacte.analytics` only, never handed to analysts: each of them
    returns aggregates over distinct customers with every group of fewer than `k`
    (at least 5) suppressed, and exports go through `anonymise`. This is the one
    place the detail is read from.
    """
    return projection._detail_graph


def anonymise(projection: Projection, *, k: int = K_DEFAULT,
              rename: Callable[[str], str] | None = None) -> Release:
    """A k-anonymous release of `projection`'s detail at another `k` or under other ids.

    `projection.graph` is already the release at the projection's k; exports call this
    with fresh pseudonyms (`rename`). Built from the detail, never from the release.

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(6)]
    ...                   + [row(i, bought=["desk"], age_band="40-49") for i in range(6, 12)])
    >>> r = anonymise(p)
    >>> r.anonymity.achieved, r.anonymity.suppressed, r.anonymity.items_suppressed
    (6, 0, 0.0)
    >>> sorted({d for _, d in r.graph.out_edges(p.nodes("customer"))})
    ['product:desk', 'product:lamp', 'segment:gold']
    >>> lone = projection_of([row(i, bought=["lamp"]) for i in range(5)] + [row(9, age_band=None)])
    >>> r = anonymise(lone)     # one class of six: the lamp and the age band are not shared
    >>> sorted({str(d.get("age_band")) for _, d in r.graph.nodes(data=True)})
    ['*', 'None']
    >>> r.graph.number_of_edges()
    6
    """
    return release_of(_detail(projection), k=k, purpose=projection.purpose,
                      built_at=projection.built_at, rename=rename)


def build_projection(session: ProjectionSource, *, k: int = K_DEFAULT,
                     key: bytes | None = None, batch: int = 1000,
                     now: Clock = utcnow) -> Projection:
    """Build the analyst's projection from `session.project()`: its release is k-anonymous.

    `session` is a `Session` opened by an analyst (or an admin) under `analytics`;
    anyone else is refused by the session itself, and the refusal is audited. `key`
    is for tests only: leave it out and a fresh random key is drawn and forgotten,
    so no two projections share a pseudonym.

    >>> from pacte.graph.views import ProjectedCustomer, ProductView
    >>> class Rows:
    ...     def project(self, *, batch=1000):
    ...         yield [ProjectedCustomer("c_1", {"segment": "gold", "name": "Zed"},
    ...                                  devices=["bulb"])]
    >>> p = build_projection(Rows())
    >>> g = _detail(p)
    >>> sorted(g.nodes(data="kind"))[1:]
    [('device:bulb', 'device'), ('segment:gold', 'segment')]
    >>> [d for n, d in g.nodes(data=True) if d["kind"] == "customer"]
    [{'kind': 'customer', 'segment': 'gold'}]
    >>> p.customers, p.anonymity.suppressed   # one customer: fewer than k, none released
    (0, 1)
    """
    detail = _detailed_graph(session, key=key, batch=batch)
    return Projection(detail, now(), k=k)


def _detailed_graph(session: ProjectionSource, *, key: bytes | None,
                    batch: int) -> nx.MultiDiGraph:
    """The pseudonymised detailed graph of `session.project()` (the module doc's shape)."""
    if key is not None and len(key) < 16:
        raise InputError("a projection key needs at least 16 bytes")
    secret = key if key is not None else secrets.token_bytes(_KEY_BYTES)
    graph: nx.MultiDiGraph = nx.MultiDiGraph()
    for rows in session.project(batch=batch):
        _add_customers(graph, rows, secret)
    del secret  # the key dies with this call: nothing can map a pseudonym back
    if isinstance(session, ProductCatalogue):
        _name_products(graph, session)
    return graph


def _name_products(graph: nx.MultiDiGraph, catalogue: ProductCatalogue) -> None:
    """Catalogue names for product nodes (no personal data; each lookup is audited)."""
    for node, kind in list(graph.nodes(data="kind")):
        if kind != "product":
            continue
        view = catalogue.product(graph.nodes[node]["label"])
        if view is not None:
            graph.nodes[node].update(label=view.name or view.id, category=view.category)


def _add_customers(graph: nx.MultiDiGraph, rows: Iterable[ProjectedCustomer],
                   key: bytes) -> None:
    for row in rows:
        me = pseudonym(key, row.id)
        attrs = {a: v for a in _CUSTOMER_ATTRS
                 if isinstance(v := row.fields.get(a), str) and v}
        graph.add_node(me, kind=CUSTOMER, **attrs)
        segment = attrs.get("segment")
        if segment:
            graph.add_edge(me, _thing(graph, "segment", segment), rel="member_of")
        for product, at, amount in row.purchases:
            data: dict[str, Any] = {"rel": "bought", "at": at}
            if amount is not None:
                data["amount"] = amount
            graph.add_edge(me, _thing(graph, "product", product), **data)
        for product, at, rating in row.reviews:
            data = {"rel": "reviewed", "at": at}
            if rating is not None:
                data["rating"] = rating
            graph.add_edge(me, _thing(graph, "product", product), **data)
        for at, channel, kind, about in row.interactions:
            data = {"rel": "interacted", "at": at, "interaction": kind}
            if about is not None:
                data["product"] = _thing(graph, "product", about)
            graph.add_edge(me, _thing(graph, "channel", channel), **data)
        for device in row.devices:
            graph.add_edge(me, _thing(graph, "device", device), rel="owns")
        for other in row.referred:
            peer = pseudonym(key, other)
            # The session lists only referred customers who are themselves in the
            # projection; their node gets its attributes when their row arrives.
            graph.add_node(peer, kind=CUSTOMER)
            graph.add_edge(me, peer, rel="referred")


def _thing(graph: nx.MultiDiGraph, kind: str, name: str) -> str:
    node = node_id(kind, name)
    if node not in graph:
        graph.add_node(node, kind=kind, label=name)
    return node
