"""The matching rule: which customers a record's identifiers point at, and when that
is enough to say it is them.

- Strong identifiers (CRM id, email, loyalty card, order id, device serial) name one
  person: a record matching one customer by any of them is that customer.
- A phone is weak: households and switchboards share one. A phone match alone links
  a record to a customer only when it points at exactly one customer, and the record
  carries no email or that customer has none on file. A record whose email differs
  from the phone-matched customer's is a housemate, and becomes its own customer.
- A record whose strong identifiers point at two or more customers says they are one
  person: they must be merged (see `Resolution.conflict`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ["STRONG_KINDS", "WEAK_KINDS", "Resolution", "resolve"]

STRONG_KINDS = frozenset({"crm", "email", "loyalty", "order", "device"})
WEAK_KINDS = frozenset({"phone"})


@dataclass(frozen=True, slots=True)
class Resolution:
    customer: str | None   # the one customer the record is, or None (a new one)
    conflict: tuple[str, ...] = ()  # several customers its strong identifiers name
    rule: str = "new"


def resolve(*, strong: Collection[str], weak: Collection[str], has_email: bool,
            emails: Mapping[str, bool]) -> Resolution:
    """`strong`/`weak`: customers matched by each kind; `emails`: whether a weakly
    matched customer has an email on file."""
    s = sorted(set(strong))
    if len(s) > 1:
        return Resolution(None, tuple(s), "conflict")
    if s:
        return Resolution(s[0], rule="exact")
    w = sorted(set(weak))
    if len(w) == 1 and not (has_email and emails.get(w[0], False)):
        return Resolution(w[0], rule="phone")
    return Resolution(None, rule="new" if not w else "household")
