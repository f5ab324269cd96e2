"""Merging customers found to be one person, and undoing it (issue #17, part 3).

**Survivor.** Of the customers merged, the oldest survives: the earliest `created_at`,
on a tie the smallest id. Its id stays; the others become its *parts*.

**A merge of part P into survivor S** is one audited write, made of what the store
already holds (ciphertext is moved, never decrypted nor re-encrypted):

- P's node stays as it was, under the kind `MERGED_PART` (no customer of its own:
  lists, counts and lookups skip it), with a `SAME_AS` edge P -> S. Its id and its
  identifiers keep resolving to S: `Session.customer(P)` answers with S, and
  identifier entries pointing at P are followed to S by ingestion. Its data keys stay
  its own, so a part's nodes are still sealed under P's key.
- Every edge at P (interactions, purchases, reviews, devices, referrals) moves to S,
  under the same id; the `SAME_AS` edge lists them, and which end was P's.
- Consent is the intersection. P's history is kept, retyped `PART_CONSENT`, out of the
  rule's sight; S's history is kept and, where S's consent reaches further than P's,
  the merge adds choices to it (source `merge`): a withdrawal of each purpose S has
  granted and P has not (`pacte.graph.consent.decide` says which), and where a
  withdrawal on a parent would also close a child both have granted, a grant of that
  child after it; a grant of S that P has until an earlier date gets that end date.
  So a consent-based purpose sees the merged customer only if it saw both parts, and
  a merge never shows such a purpose a field or an interaction it could not see.
- After the merge, ingested records carrying only P's identifiers go to S, tagged
  with P (`part` on their edges, P as owner of their nodes), so that an unmerge can
  send them back.

**Unmerge** restores P as it was: node, edges (those moved and those that arrived for
P since), consent history; the choices the merge added to S are removed. A withdrawal
made on S since the merge applies to P too (a withdrawal on either side wins). Each
merge and unmerge is on record with the rule, the identifier kinds and blind refs
(the first 8 hex digits of keyed tokens), never values.

**Erasure** of a merged customer erases every part with it (`Session.erase`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pacte.errors import Conflict, InputError, NotFound
from pacte.graph.consent import ConsentState, consent_states, decide
from pacte.graph.model import MERGED_PART, PART_CONSENT, ConsentStatus
from pacte.graph.policy import Policy
from pacte.graph.session import MergeGraph, Session
from pacte.graph.store import Edge, Node, Value, WriteBatch

__all__ = ["MergeEvidence", "merge_customers", "survivor_order", "unmerge"]

# How far ahead of the clock a customer's consent stamps may already run (a burst of
# choices); the merge's choices are stamped after every one of them.
_SLACK_US = 1_000_000


@dataclass(frozen=True)
class MergeEvidence:
    """Why the customers are one: the rule and the identifiers that said so (kinds and
    blind refs, never values)."""

    rule: str
    kinds: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()


def survivor_order(graphs: Mapping[str, MergeGraph]) -> list[str]:
    """The customers, the survivor first: the oldest, then the smallest id."""
    def key(cid: str) -> tuple[int, str]:
        created = graphs[cid].node.props.get("created_at")
        return (created if isinstance(created, int) else 2**63, cid)
    return sorted(graphs, key=key)


def merge_customers(session: Session, customer_ids: Sequence[str], *, policy: Policy, now_us: int,
          evidence: MergeEvidence) -> str:
    """Merge the customers into one; returns the survivor's id."""
    ids = list(dict.fromkeys(customer_ids))
    if len(ids) < 2:
        raise InputError("a merge takes two customers or more")
    graphs = session.merge_graph(ids)
    for cid in ids:
        graph = graphs.get(cid)
        if graph is None or graph.node.kind != "Customer":
            raise NotFound(f"no customer {cid!r} to merge")
    order = survivor_order(graphs)
    survivor = order[0]
    for part in order[1:]:
        batch, details = _merge_one(graphs[survivor], graphs[part], policy=policy,
                                    now_us=now_us, evidence=evidence)
        session.merge_write(batch, action="identity.merge", subjects=[survivor, part],
                            details=details)
        graphs[survivor] = session.merge_graph([survivor])[survivor]
    return survivor


def unmerge(session: Session, part_id: str, *, policy: Policy, now_us: int) -> str:
    """Undo the merge of `part_id` into its survivor; returns the survivor's id."""
    graph, link, s_graph = _merged_pair(session, part_id)
    survivor = link.dst
    added = set(_strings(link.props.get("consents")))
    edges = [*_returned_edges(s_graph, link, part_id),
             *_restored_consents(graph, s_graph, link, added)]
    node = graph.node
    restored = Node("Customer", node.id, node.props, node.owner)
    batch = WriteBatch(nodes=[restored], edges=edges,
                       delete_edges=[link.id, *sorted(added)])
    details: dict[str, object] = {
        "rule": "unmerge", "merge_rule": link.props.get("rule"),
        "identifier_kinds": _strings(link.props.get("kinds")),
        "blind_refs": _strings(link.props.get("refs")),
        "edges_returned": len(edges)}
    session.merge_write(batch, action="identity.unmerge", subjects=[survivor, part_id],
                        details=details)
    return survivor


def _merged_pair(session: Session, part_id: str) -> tuple[MergeGraph, Edge, MergeGraph]:
    """The part, its `SAME_AS` link and its survivor, which must not be merged itself."""
    graph = session.merge_graph([part_id]).get(part_id)
    if graph is None or graph.node.kind != MERGED_PART:
        raise NotFound(f"{part_id!r} is not a merged customer's part")
    link = next(e for e in graph.edges if e.type == "SAME_AS" and e.src == part_id)
    survivor = link.dst
    s_graph = session.merge_graph([survivor]).get(survivor)
    if s_graph is None or s_graph.node.kind != "Customer":
        raise Conflict(f"{survivor!r}, which {part_id!r} was merged into, is itself merged "
                       "now: unmerge it first")
    return graph, link, s_graph


def _returned_edges(s_graph: MergeGraph, link: Edge, part: str) -> list[Edge]:
    """Back to the part: the edges the merge moved, and those that arrived for it since."""
    survivor = link.dst
    s_edges = {e.id: e for e in s_graph.edges}
    edges: list[Edge] = []
    for entry in _strings(link.props.get("moved")):
        sides, _, eid = entry.partition(":")
        e = s_edges.get(eid)
        if e is not None:
            edges.append(Edge(e.type, e.id, part if "s" in sides else e.src,
                              part if "d" in sides else e.dst, e.at, e.props))
    for e in s_graph.edges:
        if e.props.get("part") == part:
            props = {k: v for k, v in e.props.items() if k != "part"}
            edges.append(Edge(e.type, e.id, part if e.src == survivor else e.src,
                              part if e.dst == survivor else e.dst, e.at, props))
    return edges


def _restored_consents(graph: MergeGraph, s_graph: MergeGraph, link: Edge,
                       added: set[str]) -> list[Edge]:
    """The part's consent history, in the rule's sight again; withdrawals made on the
    merged customer since the merge hold for the part too."""
    part, survivor, merged_at = link.src, link.dst, int(link.at)
    edges = [Edge("CONSENTED", e.id, e.src, e.dst, e.at, e.props)
             for e in graph.edges if e.type == PART_CONSENT]
    edges.extend(
        Edge("CONSENTED", _edge_id("k_", e.id, part), part, e.dst, e.at,
             {**e.props, "source": "unmerge"})
        for e in s_graph.edges if _withdrawn_since(e, survivor, merged_at, added))
    return edges


def _withdrawn_since(e: Edge, survivor: str, merged_at: int, added: set[str]) -> bool:
    """A withdrawal made on the merged customer itself since the merge (not one the
    merge added, not one that came in as a part's)."""
    return (e.type == "CONSENTED" and e.src == survivor and e.at >= merged_at
            and e.id not in added and e.props.get("part") is None
            and e.props.get("status") == ConsentStatus.WITHDRAWN.value)


def _merge_one(s: MergeGraph, p: MergeGraph, *, policy: Policy, now_us: int,
               evidence: MergeEvidence) -> tuple[WriteBatch, dict[str, object]]:
    survivor, part = s.node.id, p.node.id
    edges: list[Edge] = []
    moved: list[str] = []
    for e in p.edges:
        if e.type in ("SAME_AS", PART_CONSENT):
            continue  # the part's own parts stay its own, as they were
        if e.type == "CONSENTED":
            if e.src == part:
                edges.append(Edge(PART_CONSENT, e.id, e.src, e.dst, e.at, e.props))
            continue
        sides = ("s" if e.src == part else "") + ("d" if e.dst == part else "")
        moved.append(f"{sides}:{e.id}")
        edges.append(Edge(e.type, e.id, survivor if e.src == part else e.src,
                          survivor if e.dst == part else e.dst, e.at, e.props))
    consents = _intersection(s, p, policy=policy, now_us=now_us)
    edges.extend(consents)
    details: dict[str, object] = {
        "rule": evidence.rule, "identifier_kinds": sorted(set(evidence.kinds)),
        "blind_refs": sorted(set(evidence.refs)), "edges_moved": len(moved),
        "consents_narrowed": len(consents)}
    link_props: dict[str, Value] = {
        "rule": evidence.rule, "kinds": sorted(set(evidence.kinds)),
        "refs": sorted(set(evidence.refs)), "moved": moved,
        "consents": [e.id for e in consents]}
    edges.append(Edge("SAME_AS", "sa_" + part, part, survivor, now_us, link_props))
    node = p.node
    batch = WriteBatch(nodes=[Node(MERGED_PART, node.id, node.props, node.owner)],
                       edges=edges)
    return batch, details


def _intersection(s: MergeGraph, p: MergeGraph, *, policy: Policy, now_us: int
                  ) -> list[Edge]:
    """The choices to add to the survivor so that the rule grants it a purpose only
    where it granted both: parents before children, each stamped after the last."""
    s_edges = [e for e in s.edges if e.type == "CONSENTED" and e.src == s.node.id]
    p_edges = [e for e in p.edges if e.type == "CONSENTED" and e.src == p.node.id]
    ahead = now_us + _SLACK_US
    stamp = max([now_us, *(e.at + 1 for e in (*s_edges, *p_edges) if e.at <= ahead)])
    s_states = consent_states(s_edges, at=now_us)
    p_states = consent_states(p_edges, at=now_us)
    current = dict(s_states)
    added: list[Edge] = []
    for purpose in sorted(policy.purposes, key=lambda q: (len(policy.ancestors(q)), q)):
        choice = _narrowed(policy, purpose, s_states, p_states, current)
        if choice is None:
            continue
        status, until = choice
        props: dict[str, Value] = {
            "status": status.value, "until": until, "source": "merge",
            "policy_version": policy.version, "proof": None}
        edge = Edge("CONSENTED", _edge_id("k_", s.node.id, p.node.id, purpose),
                    s.node.id, purpose, stamp, props)
        stamp += 1
        added.append(edge)
        current = consent_states([*s_edges, *added], at=stamp)
    return added


def _narrowed(policy: Policy, purpose: str, mine_states: Mapping[str, ConsentState],
              their_states: Mapping[str, ConsentState], current: Mapping[str, ConsentState]
              ) -> tuple[ConsentStatus, int | None] | None:
    """The choice to add for `purpose` (status, end), or None when the survivor's current
    state already is the intersection of both sides' (granted only where both granted,
    ending at the earlier end)."""
    mine = decide(policy, purpose, mine_states)
    theirs = decide(policy, purpose, their_states)
    now = decide(policy, purpose, current)
    want = mine.granted and theirs.granted
    until = _earlier(mine.by, theirs.by) if want else None
    if now.granted == want and (not want or _until(now.by) == until):
        return None
    return (ConsentStatus.GRANTED if want else ConsentStatus.WITHDRAWN), until


def _until(state: ConsentState | None) -> int | None:
    return state.until if state is not None else None


def _earlier(a: ConsentState | None, b: ConsentState | None) -> int | None:
    ends = [u for u in (_until(a), _until(b)) if u is not None]
    return min(ends) if ends else None


def _edge_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def _strings(value: Value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
