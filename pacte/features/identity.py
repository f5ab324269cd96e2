"""Identity (issue #17): the gate pacte.ingest and pacte.identity go through.

Keyed tokens of identifiers and row keys, lookups in the identity indexes, which ids
are merged parts and their survivors, and the stored graph of customers to merge or
unmerge, written back on record. Admins only; tokens say nothing without the vault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from pacte.errors import InputError
from pacte.features.door import Door
from pacte.graph.checks import check_id
from pacte.graph.model import MERGED_PART, PART_CONSENT
from pacte.graph.operations import Action
from pacte.graph.store import Edge, Node, WriteBatch

__all__ = ["MergeGraph", "identifier_refs", "keyed_tokens", "lookup_token_groups",
           "lookup_tokens", "merge_graph", "merge_write", "survivors"]

# The edge types at a customer that a merge moves or keeps (SAME_AS: its own parts).
_CUSTOMER_EDGES = ("HAD", "BOUGHT", "REVIEWED", "OWNS", "REFERRED", "CONSENTED",
                   PART_CONSENT, "SAME_AS")


class MergeGraph(NamedTuple):
    """A customer's or merged part's node and every edge at it (in and out, once)."""

    node: Node
    edges: list[Edge]


def keyed_tokens(door: Door, namespace: str, values: Sequence[str]) -> list[bytes]:
    """16-byte keyed tokens of normalised values (identifiers, row keys); admins only."""
    door._gate(Action.IDENTITY_TOKEN)
    return door._keyed_tokens(namespace, values)


def lookup_tokens(door: Door, index: str, tokens: Sequence[bytes]) -> dict[bytes, list[str]]:
    """The node ids each token of the index `index` points at (absent: none), in one
    round trip.

    Admins only; the lookup is audited with the customers it found when the index
    points at customers (identifier entries), never with the tokens themselves.
    """
    door._gate(Action.IDENTITY_LOOKUP)
    found = door._lookup_many(index, tokens) if tokens else {}
    door._audit(door._record(Action.IDENTITY_LOOKUP, subjects=sorted(
        {i for ids in found.values() for i in ids if i.startswith("c_")}),
        extra={"index": index, "tokens": len(tokens), "found": len(found)}))
    return found


def lookup_token_groups(door: Door, groups: Mapping[str, Sequence[bytes]]
                        ) -> dict[str, dict[bytes, list[str]]]:
    """`lookup_tokens` of several indexes at once (index name -> tokens): one round trip
    where the store offers it (Neo4j), one lookup per index elsewhere; one audit record
    with the customers found and, per index, how many tokens were asked and found."""
    door._gate(Action.IDENTITY_LOOKUP)
    wanted = {name: tokens for name, tokens in groups.items() if tokens}
    bulk = door._bulk_lookups()
    if bulk is not None and wanted:
        found = bulk.lookup_groups(wanted)
    else:
        found = {name: door._lookup_many(name, tokens) for name, tokens in wanted.items()}
    door._audit(door._record(Action.IDENTITY_LOOKUP, subjects=sorted(
        {i for hits in found.values() for ids in hits.values() for i in ids
         if i.startswith("c_")}),
        extra={"indexes": {name: {"tokens": len(wanted[name]), "found": len(hits)}
                           for name, hits in sorted(found.items())}}))
    return {name: found.get(name, {}) for name in groups}


def identifier_refs(door: Door, customer_id: str) -> dict[str, list[str]]:
    """The identifier entries pointing at a customer or its merged parts, by kind, as
    blind refs (the first 8 hex digits of their tokens, never values); admins only,
    audited. It scans the index: an operator's question, not a request path."""
    door._gate(Action.IDENTITY_EXPLAIN)
    check_id(customer_id)
    door._require_visible(Action.IDENTITY_EXPLAIN, customer_id)
    whole = {customer_id, *door._merged_parts(customer_id)}  # its parts built it too
    out: dict[str, list[str]] = {}
    for entries in door._index_entries():
        for e in entries:
            if e.node_id in whole and e.name.startswith("Identity."):
                out.setdefault(e.name.removeprefix("Identity."), []).append(e.token.hex()[:8])
    door._audit(door._record(Action.IDENTITY_EXPLAIN, subjects=[customer_id]))
    return {k: sorted(v) for k, v in sorted(out.items())}


def survivors(door: Door, customer_ids: Sequence[str]) -> dict[str, str]:
    """For ingestion: which of these ids are merged parts, and their survivors;
    admins only (a part's id is still a customer's, so nothing new is told)."""
    door._gate(Action.IDENTITY_LOOKUP)
    ids = list(dict.fromkeys(customer_ids))
    bulk = door._bulk_lookups()
    if bulk is not None:
        # A part is a node of kind MERGED_PART (pacte.identity.merge writes the kind and
        # the SAME_AS link together): told by seeks alone, where the edge check below
        # would expand every edge of every customer on Neo4j.
        parts = bulk.ids_of_kind(ids, MERGED_PART) if ids else []
    else:
        found = door._edges_many(ids, "SAME_AS")
        parts = [c for c, edges in found.items() if edges]
    return door._survivors(parts) if parts else {}


def merge_graph(door: Door, customer_ids: Sequence[str]) -> dict[str, MergeGraph]:
    """The stored nodes and edges of customers or merged parts, as they are
    (ciphertext), for `pacte.identity.merge` to rewrite; admins only, audited.
    Absent ids are left out."""
    door._gate(Action.IDENTITY_READ)
    for cid in customer_ids:
        check_id(cid)
    out: dict[str, MergeGraph] = {}
    for cid, node in door._read_nodes(list(customer_ids)).items():
        if node.kind not in ("Customer", MERGED_PART):
            continue
        edges = [e for t in _CUSTOMER_EDGES for d in ("out", "in")
                 for e in door._edges(cid, t, direction=d)]
        out[cid] = MergeGraph(node, list({e.id: e for e in edges}.values()))
    door._audit(door._record(Action.IDENTITY_READ, subjects=sorted(out)))
    return out


def merge_write(door: Door, batch: WriteBatch, *, action: str, subjects: Sequence[str],
                details: Mapping[str, object]) -> None:
    """Write a merge or unmerge built by `pacte.identity.merge`, on record first
    (action, the customers, and `details`: rule, identifier kinds and blind refs,
    never values); admins only."""
    if action not in (Action.IDENTITY_MERGE, Action.IDENTITY_UNMERGE):
        raise InputError("a merge write is identity.merge or identity.unmerge")
    door._gate(Action(action))
    door._commit(batch, door._record(Action(action), subjects=subjects, extra=details))
    for cid in subjects:
        door._forget(cid)
