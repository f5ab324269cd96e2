"""`pacte identity explain CUSTOMER`: which identifiers and rules built a customer.

It lists the identifier entries that point at the customer, by kind, as blind refs
(the first 8 hex digits of their keyed tokens: enough to tell two apart, never the
value), and the matching rule each kind took part under (from the policy file); for a
merged customer, its parts' identifiers too, and each merge: which customer was merged
in, when, by which rule and identifiers (see pacte.identity.merge).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pacte.clock import from_micros
from pacte.graph.session import Session
from pacte.identity.rules import MatchRules

__all__ = ["IdentityExplanation", "MergeNote", "explain"]


@dataclass(frozen=True)
class IdentityExplanation:
    customer_id: str
    identifiers: dict[str, list[str]]  # kind -> blind refs
    rules: dict[str, str]  # kind -> the rule it matched under
    merges: list[MergeNote] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.identifiers:
            out = [f"{self.customer_id}: no identifier entries (created before ingestion, "
                   "or by the API)"]
        else:
            out = [f"{self.customer_id}: built from "
                   f"{sum(map(len, self.identifiers.values()))} identifiers"]
        for kind, refs in self.identifiers.items():
            out.append(f"  {kind}: {len(refs)} ({', '.join(refs)}); {self.rules[kind]}")
        for m in self.merges:
            out.append(f"  merged {m.part} into it on {m.at}: rule {m.rule}, identifiers "
                       f"{', '.join(m.kinds) or '-'} ({', '.join(m.refs) or '-'}); "
                       f"undo with: pacte identity unmerge {m.part}")
        return out


@dataclass(frozen=True)
class MergeNote:
    part: str
    at: str
    rule: str
    kinds: list[str]
    refs: list[str]


def explain(session: Session, customer_id: str, rules: MatchRules) -> IdentityExplanation:
    refs = session.identifier_refs(customer_id)
    described = {}
    for kind in refs:
        if kind in rules.weak:
            described[kind] = ("weak: links alone only when it points at one customer and "
                               "the emails do not differ")
        elif kind in rules.match:
            described[kind] = "exact match after normalisation"
        else:
            described[kind] = "linked, but no longer matched on (policy)"
    graph = session.merge_graph([customer_id]).get(customer_id)
    merges = [MergeNote(e.src, from_micros(e.at).isoformat(), str(e.props.get("rule")),
                        _strings(e.props.get("kinds")), _strings(e.props.get("refs")))
              for e in (graph.edges if graph else ())
              if e.type == "SAME_AS" and e.dst == customer_id]
    return IdentityExplanation(customer_id, refs, described, sorted(merges, key=_when))


def _when(note: MergeNote) -> tuple[str, str]:
    return note.at, note.part


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
