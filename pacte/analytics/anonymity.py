"""k-anonymity for every customer record handed to analysts (G9).

A projection's graph and its exports hold one node per customer with their edges;
aggregates cannot protect that. Here each customer record (segment, age band and
the whole edge set: products and categories bought or reviewed, channels and kinds
of interaction, device types, with dates and amounts) is made identical to at
least `k - 1` others before release:

1. **Partition** (greedy top-down specialisation, Mondrian-style): customers are
   split on one quasi-identifier after another, from the coarsest (segment, age
   band, category set, device types, channels) to the finest (product set, kinds
   of interaction, reviews). A group of at least `k` becomes a subgroup; the small
   groups are pooled, and a pool of fewer than `k` joins the smallest subgroup.
   Every resulting class holds at least `k` customers, whatever the data.
2. **Generalise** each class to one record: a value shared by all its members is
   kept, differing age bands become their range ("30-49"), anything else becomes
   "*"; the released items are those every member has, at the product level, or
   else at the category level (products generalised to categories); each released
   edge carries the class's month range of its dates, its band of amounts and its
   range of ratings, never one person's exact value.
3. **Suppress** what cannot be generalised: items not shared by the whole class
   (counted in `items_suppressed`), referrals between customers (an edge between
   two records links them, whatever their classes), and, when fewer than `k`
   customers are projected, every customer.

Every member of a class is then released with the same attributes and the same
edges, so any record matches at least `k` customers. Released edges are true for
every member (a subset of what each did, generalised), never invented.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import networkx as nx

from pacte.analytics.nodes import CUSTOMER, node_id
from pacte.analytics.suppress import K_DEFAULT, check_k

__all__ = ["AMOUNT_BANDS", "Anonymity", "Release", "release_of"]

# Amount bands (currency units): an amount is released as the band holding it.
AMOUNT_BANDS: tuple[float, ...] = (0, 10, 25, 50, 100, 250, 500, 1000)
ANY = "*"
_RELS = ("bought", "reviewed", "interacted", "owns")

# A fact: (rel, item node, detail); detail is the interaction kind for `interacted`.
Item = tuple[str, str, str | None]


@dataclass(frozen=True, slots=True)
class Anonymity:
    """What a release achieved, for its metadata, its audit entry and the analyst."""

    k: int  # the k asked for
    achieved: int  # the smallest equivalence class released (0: nobody released)
    customers: int  # customers in the projection
    suppressed: int  # customers left out of the release
    classes: int  # equivalence classes released
    items_suppressed: float  # share of customers' (relation, item) facts left out

    @property
    def released(self) -> int:
        return self.customers - self.suppressed

    @property
    def suppression_rate(self) -> float:
        """Share of projected customers left out of the release."""
        return self.suppressed / self.customers if self.customers else 0.0

    def metadata(self) -> dict[str, int | float]:
        """Flat scalars, as graph attributes and audit fields."""
        return {"k": self.k, "k_achieved": self.achieved, "customers": self.customers,
                "customers_released": self.released, "customers_suppressed": self.suppressed,
                "suppression_rate": round(self.suppression_rate, 4),
                "equivalence_classes": self.classes,
                "items_suppressed_rate": round(self.items_suppressed, 4)}

    def __str__(self) -> str:
        return (f"k-anonymity: k={self.k} asked, smallest class {self.achieved}; "
                f"{self.released} of {self.customers} customers released in {self.classes} "
                f"classes, suppression rate {self.suppression_rate:.1%} of customers and "
                f"{self.items_suppressed:.1%} of their items")


@dataclass(frozen=True, slots=True)
class Release:
    """A k-anonymous graph: the customer records as they may leave, and how."""

    graph: nx.MultiDiGraph
    anonymity: Anonymity


@dataclass(slots=True)
class _Record:
    node: str
    segment: str | None
    age_band: str | None
    facts: dict[Item, list[dict[str, Any]]]  # fine item -> the edges behind it
    coarse: dict[Item, Item]  # fine item -> its category-level item (when it has one)
    fine_items: frozenset[Item] = frozenset()
    coarse_items: frozenset[Item] = frozenset()


def release_of(detail: nx.MultiDiGraph, *, k: int = K_DEFAULT, purpose: str,
               built_at: datetime, rename: Callable[[str], str] | None = None) -> Release:
    """The k-anonymous release of a projection's detailed graph (see the module doc).

    Called by `Projection` for its public graph and by `anonymise` (exports), never
    by analysts, who hold no detailed graph. `rename` maps a customer node to the id
    it gets in the release (exports use fresh pseudonyms); by default nodes keep
    their ids.
    """
    check_k(k)
    records = [_record(detail, c) for c, kind in detail.nodes(data="kind") if kind == CUSTOMER]
    records.sort(key=lambda r: r.node)
    classes = _partition(records, k) if len(records) >= k else []
    out = nx.MultiDiGraph(purpose=purpose, built_on=built_at.date().isoformat())
    named = rename or (lambda n: n)
    facts = kept = 0
    for members in classes:
        kept += _release_class(out, detail, members, named)
        facts += sum(len(r.facts) for r in members)
    suppressed = 0 if classes else len(records)
    facts += sum(len(r.facts) for r in records) if not classes else 0
    anonymity = Anonymity(
        k=k, achieved=min((len(c) for c in classes), default=0), customers=len(records),
        suppressed=suppressed, classes=len(classes),
        items_suppressed=round(1 - kept / facts, 4) if facts else 0.0)
    out.graph.update(anonymity.metadata())
    return Release(out, anonymity)


# -- records ----------------------------------------------------------------------


def _record(g: nx.MultiDiGraph, c: str) -> _Record:
    d = g.nodes[c]
    facts: dict[Item, list[dict[str, Any]]] = defaultdict(list)
    coarse: dict[Item, Item] = {}
    for _, dst, data in g.out_edges(c, data=True):
        rel = data.get("rel")
        if rel not in _RELS:
            continue  # member_of follows the segment; referrals never leave
        detail = data.get("interaction") if rel == "interacted" else None
        item: Item = (rel, dst, detail if isinstance(detail, str) else None)
        facts[item].append(data)
        if rel in ("bought", "reviewed"):
            category = g.nodes[dst].get("category")
            if isinstance(category, str) and category:
                coarse[item] = (rel, node_id("category", category), None)
        elif rel == "interacted" and item[2] is not None:
            coarse[item] = (rel, dst, None)  # the channel, whatever the kind
    return _Record(c, d.get("segment"), d.get("age_band"), facts, coarse,
                   frozenset(facts), frozenset(coarse.get(i, i) for i in facts))


# The single-valued quasi-identifiers, split on first (by value); age bands are ordered,
# so sparse ones merge with their neighbours ("70-89") rather than into one pool.
_VALUES: tuple[tuple[Callable[[_Record], str], bool], ...] = (
    (lambda r: r.segment or "", False),
    (lambda r: r.age_band or "", True),
)


def _partition(records: list[_Record], k: int) -> list[list[_Record]]:
    """Classes of at least `k` records each (`records` holds at least `k`).

    First by segment, then by age band (values held by fewer than `k` are pooled);
    then, within each part, by the presence of one item after another (set-valued
    quasi-identifiers, the way transactional data is partitioned): the most common
    item at the category level (categories bought or reviewed, devices, channels)
    that splits the part into two sides of at least `k`, else the most common such
    item at the product level (products, kinds of interaction), until none does.
    """
    done: list[list[_Record]] = []
    todo: list[tuple[list[_Record], int]] = [(records, 0)]
    while todo:
        members, depth = todo.pop()
        if len(members) < 2 * k:
            done.append(members)  # too few to split into two classes of k
        elif depth < len(_VALUES):
            key, ordered = _VALUES[depth]
            todo.extend((part, depth + 1) for part in _by_value(members, key, k,
                                                                  ordered=ordered))
        else:
            sides = _by_item(members, k)
            if sides is None:
                done.append(members)
            else:
                todo.extend((side, depth) for side in sides)
    return done


def _by_value(members: list[_Record], key: Callable[[_Record], str], k: int, *,
              ordered: bool) -> list[list[_Record]]:
    groups: dict[str, list[_Record]] = defaultdict(list)
    for r in members:
        groups[key(r)].append(r)
    return _neighbours_merged(groups, k) if ordered else _small_pooled(members, groups, k)


def _neighbours_merged(groups: dict[str, list[_Record]], k: int) -> list[list[_Record]]:
    """Ordered values: neighbours merge until each part holds k (as histogram bins do)."""
    parts: list[list[_Record]] = [[]]
    for value in sorted(groups, key=_band_order):
        if len(parts[-1]) >= k:
            parts.append([])
        parts[-1].extend(groups[value])
    if len(parts) > 1 and len(parts[-1]) < k:
        parts[-2].extend(parts.pop())
    return parts


def _small_pooled(members: list[_Record], groups: dict[str, list[_Record]], k: int
                  ) -> list[list[_Record]]:
    """Unordered values: each held by k or more is a part; the others are pooled."""
    parts = [groups[v] for v in sorted(groups) if len(groups[v]) >= k]
    pool = [r for g in groups.values() if len(g) < k for r in g]
    if pool and len(pool) < k:
        if not parts:
            return [members]
        min(parts, key=len).extend(pool)  # the pool joins the smallest part
    elif pool:
        parts.append(pool)
    return parts


def _band_order(band: str) -> tuple[int, str]:
    low = band.partition("-")[0]
    return (int(low) if low.isdigit() else -1, band)


def _by_item(members: list[_Record], k: int) -> tuple[list[_Record], list[_Record]] | None:
    n = len(members)
    for level in ("coarse_items", "fine_items"):
        counts: Counter[Item] = Counter()
        for r in members:
            counts.update(getattr(r, level))
        usable = [(c, i) for i, c in counts.items() if k <= c <= n - k]
        if usable:
            _, item = max(usable)
            has = [r for r in members if item in getattr(r, level)]
            return has, [r for r in members if item not in getattr(r, level)]
    return None


# -- release ----------------------------------------------------------------------


def _release_class(out: nx.MultiDiGraph, src: nx.MultiDiGraph, members: Sequence[_Record],
                   named: Callable[[str], str]) -> int:
    """Add the class's members with their common generalised record; facts kept."""
    shared, coarse = _common_items(members)
    released: dict[Item, list[dict[str, Any]]] = defaultdict(list)
    for r in members:
        for item, found in r.facts.items():
            kept = _kept_as(r, item, shared, coarse)
            if kept is not None:
                released[kept].extend(found)
    edges = [(item[1], _generalised(item, found)) for item, found in sorted(released.items())]
    for dst, _ in edges:
        _thing(out, src, dst)
    attrs, seg_node = _class_record(out, members)
    kept_facts = 0
    for r in members:
        me = named(r.node)
        # A label for graph tools (Gephi shows labels, not ids): the pseudonym itself,
        # shortened, which says no more than the node id does.
        out.add_node(me, label=f"customer {me.rsplit(':', 1)[-1][:8]}", **attrs)
        if seg_node is not None:
            out.add_edge(me, seg_node, rel="member_of")
        for dst, data in edges:
            out.add_edge(me, dst, **data)
        kept_facts += sum(1 for i in r.facts if _kept_as(r, i, shared, coarse) is not None)
    return kept_facts


def _common_items(members: Sequence[_Record]) -> tuple[set[Item], set[Item]]:
    """The items every member has, and the category-level items every member has where
    the product level differs."""
    shared = set(members[0].facts).intersection(*(r.facts.keys() for r in members[1:]))
    covered = {members[0].coarse.get(i) for i in shared}
    coarse = set.intersection(*({c for c in r.coarse.values() if c not in covered}
                                for r in members))
    return shared, coarse


def _kept_as(r: _Record, item: Item, shared: set[Item], coarse: set[Item]) -> Item | None:
    """What a member's fact is released as: itself, its category-level item, or nothing."""
    if item in shared:
        return item
    c = r.coarse.get(item)
    return c if c in coarse else None


def _class_record(out: nx.MultiDiGraph, members: Sequence[_Record]
                  ) -> tuple[dict[str, Any], str | None]:
    """The attributes every member is released with, and their segment's node (added)."""
    segment = _common(r.segment for r in members)
    band = _band(r.age_band for r in members)
    attrs: dict[str, Any] = {"kind": CUSTOMER}
    if segment is not None:
        attrs["segment"] = segment
    if band is not None:
        attrs["age_band"] = band
    if segment in (None, ANY):
        return attrs, None
    seg_node = node_id("segment", segment)
    if seg_node not in out:
        out.add_node(seg_node, kind="segment", label=segment)
    return attrs, seg_node


def _thing(out: nx.MultiDiGraph, src: nx.MultiDiGraph, node: str) -> None:
    if node in out:
        return
    if node in src:
        d = src.nodes[node]
        attrs = {"kind": d.get("kind"), "label": str(d.get("label", node))}
        if isinstance(d.get("category"), str):
            attrs["category"] = d["category"]
        out.add_node(node, **attrs)
    else:  # a category: products generalised
        out.add_node(node, kind="category", label=node.split(":", 1)[1])


def _generalised(item: Item, edges: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One edge for the whole class: month range, amount band, rating range."""
    data: dict[str, Any] = {"rel": item[0]}
    if item[2] is not None:
        data["interaction"] = item[2]
    months = sorted({e["at"].strftime("%Y-%m") for e in edges
                     if isinstance(e.get("at"), datetime)})
    if months:
        data["months"] = months[0] if len(months) == 1 else f"{months[0]}/{months[-1]}"
    amounts = [float(e["amount"]) for e in edges if isinstance(e.get("amount"), int | float)]
    if amounts:
        data["amount_band"] = _amount_band(min(amounts), max(amounts))
    ratings = sorted({int(e["rating"]) for e in edges if isinstance(e.get("rating"), int)})
    if ratings:
        data["rating"] = (str(ratings[0]) if len(ratings) == 1
                          else f"{ratings[0]}-{ratings[-1]}")
    return data


def _amount_band(low: float, high: float) -> str:
    """The union of the bands holding `low` and `high`, as "a-b" or "a+".

    >>> _amount_band(12.5, 12.5), _amount_band(3, 60), _amount_band(20, 5000)
    ('10-25', '0-100', '10+')
    """
    lo = max(b for b in AMOUNT_BANDS if b <= max(low, 0))
    above = [b for b in AMOUNT_BANDS if b > high]
    return f"{lo:g}-{above[0]:g}" if above else f"{lo:g}+"


def _common(values: Iterable[str | None]) -> str | None:
    """The value all share; None when none has one; "*" when they differ."""
    seen = set(values)
    if len(seen) == 1:
        return seen.pop()
    return ANY


def _band(values: Iterable[str | None]) -> str | None:
    """Age bands: the common band, else the range they span ("30-49"), else "*".

    >>> _band(["30-39", "40-49"]), _band(["30-39", None]), _band([None, None])
    ('30-49', '*', None)
    """
    seen = set(values)
    if len(seen) == 1:
        return seen.pop()
    bounds: list[tuple[int, int]] = []
    for v in seen:
        low, _, high = (v or "").partition("-")
        if not (low.isdigit() and high.isdigit()):
            return ANY
        bounds.append((int(low), int(high)))
    return f"{min(b[0] for b in bounds)}-{max(b[1] for b in bounds)}"
