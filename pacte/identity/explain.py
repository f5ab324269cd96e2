"""`pacte identity explain CUSTOMER`: which identifiers and rules built a customer.

It lists the identifier entries that point at the customer, by kind, as blind refs
(the first 8 hex digits of their keyed tokens: enough to tell two apart, never the
value), and the matching rule each kind took part under (from the policy file).
"""

from __future__ import annotations

from dataclasses import dataclass

from pacte.graph.session import Session
from pacte.identity.rules import MatchRules

__all__ = ["IdentityExplanation", "explain"]


@dataclass(frozen=True)
class IdentityExplanation:
    customer_id: str
    identifiers: dict[str, list[str]]  # kind -> blind refs
    rules: dict[str, str]  # kind -> the rule it matched under

    def lines(self) -> list[str]:
        if not self.identifiers:
            return [f"{self.customer_id}: no identifier entries (created before ingestion, "
                    "or by the API)"]
        out = [f"{self.customer_id}: built from {sum(map(len, self.identifiers.values()))} "
               "identifiers"]
        for kind, refs in self.identifiers.items():
            out.append(f"  {kind}: {len(refs)} ({', '.join(refs)}); {self.rules[kind]}")
        return out


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
    return IdentityExplanation(customer_id, refs, described)
