"""The analyst's projection: a pseudonymised, consented networkx graph (G9, G10).

`build_projection` reads only through `Session.project()`, so the session decides
who is in it (customers with an active `analytics` consent), which fields are
opened (those the purpose may use) and audits every batch. Here the real customer
ids are replaced by pseudonyms, HMACs under a random key drawn for this projection
and then dropped, so two projections cannot be joined on their customer nodes.

The graph (a `networkx.MultiDiGraph`) has one node per customer, product, channel,
segment and device type, told apart by their `kind` attribute:

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
`analytics` purpose allows.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import networkx as nx

from pacte.clock import Clock, utcnow
from pacte.errors import InputError
from pacte.graph.views import ProductView, ProjectedCustomer

__all__ = [
    "CUSTOMER",
    "KINDS",
    "ProductCatalogue",
    "Projection",
    "ProjectionSource",
    "build_projection",
    "node_id",
    "pseudonym",
]

CUSTOMER = "customer"
KINDS = ("customer", "product", "channel", "segment", "device")
# The customer attributes the analytics purpose allows; anything else is dropped.
_CUSTOMER_ATTRS = ("segment", "age_band")
_KEY_BYTES = 32
_PSEUDONYM_HEX = 24  # 96 bits: collisions are out of reach for any customer base


class ProjectionSource(Protocol):
    """What `build_projection` needs: a session's `project()` (see `pacte.graph.session`)."""

    def project(self, *, batch: int = ...) -> Iterator[list[ProjectedCustomer]]: ...


@runtime_checkable
class ProductCatalogue(Protocol):
    """A session's `product()`: when the source has it, product nodes get names."""

    def product(self, product_id: str) -> ProductView | None: ...


@dataclass(frozen=True, slots=True)
class Projection:
    """A built projection: the graph, and when and under which purpose it was built."""

    graph: nx.MultiDiGraph
    built_at: datetime
    purpose: str = "analytics"

    def nodes(self, kind: str) -> list[str]:
        """The node ids of one kind, sorted.

        >>> p = Projection(nx.MultiDiGraph(), datetime(2026, 1, 1))
        >>> p.graph.add_node("channel:web", kind="channel", label="web")
        >>> p.nodes("channel")
        ['channel:web']
        """
        if kind not in KINDS:
            raise InputError(f"unknown node kind {kind!r}; one of {', '.join(KINDS)}")
        return sorted(n for n, k in self.graph.nodes(data="kind") if k == kind)

    @property
    def customers(self) -> int:
        """How many customers the projection holds."""
        return sum(1 for _, k in self.graph.nodes(data="kind") if k == CUSTOMER)

    def edges(self, node: str, rel: str) -> list[dict[str, Any]]:
        """The attributes of `node`'s outgoing edges of one relation, each with its `dst`."""
        return [{**data, "dst": dst} for _, dst, data in self.graph.out_edges(node, data=True)
                if data.get("rel") == rel]


def node_id(kind: str, name: str) -> str:
    """The graph node id of a product, channel, segment or device type.

    >>> node_id("product", "p_lamp")
    'product:p_lamp'
    """
    return f"{kind}:{name}"


def pseudonym(key: bytes, customer_id: str) -> str:
    """The node id standing for `customer_id` under `key` (an HMAC-SHA256, truncated).

    >>> pseudonym(b"k" * 32, "c_1") == pseudonym(b"k" * 32, "c_1") != pseudonym(b"j" * 32, "c_1")
    True
    """
    digest = hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return node_id(CUSTOMER, digest[:_PSEUDONYM_HEX])


def build_projection(session: ProjectionSource, *, key: bytes | None = None,
                     batch: int = 1000, now: Clock = utcnow) -> Projection:
    """Build the analyst's graph from `session.project()`, pseudonymising customers.

    `session` is a `Session` opened by an analyst (or an admin) under `analytics`;
    anyone else is refused by the session itself, and the refusal is audited. `key`
    is for tests only: leave it out and a fresh random key is drawn and forgotten,
    so no two projections share a pseudonym.

    >>> from pacte.graph.views import ProjectedCustomer, ProductView
    >>> class Rows:
    ...     def project(self, *, batch=1000):
    ...         yield [ProjectedCustomer("c_1", {"segment": "gold", "name": "Zed"},
    ...                                  devices=["bulb"])]
    >>> g = build_projection(Rows()).graph
    >>> sorted(g.nodes(data="kind"))[1:]
    [('device:bulb', 'device'), ('segment:gold', 'segment')]
    >>> [d for n, d in g.nodes(data=True) if d["kind"] == "customer"]
    [{'kind': 'customer', 'segment': 'gold'}]
    """
    if key is not None and len(key) < 16:
        raise InputError("a projection key needs at least 16 bytes")
    secret = key if key is not None else secrets.token_bytes(_KEY_BYTES)
    graph: nx.MultiDiGraph = nx.MultiDiGraph()
    for rows in session.project(batch=batch):
        _add_customers(graph, rows, secret)
    del secret  # the key dies with this call: nothing can map a pseudonym back
    if isinstance(session, ProductCatalogue):
        _name_products(graph, session)
    return Projection(graph, now())


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
