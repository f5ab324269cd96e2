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

Which kinds take part, and which are weak, is set in the policy file (`MatchRules`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pacte.errors import ConfigError
from pacte.identity.normalise import IDENTIFIER_KINDS

__all__ = ["STRONG_KINDS", "WEAK_KINDS", "MatchRules", "Resolution", "load_rules", "resolve"]

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


@dataclass(frozen=True, slots=True)
class MatchRules:
    """Which identifier kinds match exactly, in general and per source (policy file).

    In `policy.toml`:

        [identity]
        match = ["crm", "email", "phone", "loyalty", "order", "device"]
        weak = ["phone"]                 # never enough alone against other evidence
        [identity.sources.store_pos]     # by --source name, else the file's stem
        match = ["loyalty", "order"]     # this source's phones are not trusted

    A kind a source does not match on is neither matched nor linked for its records.
    """

    match: frozenset[str] = frozenset(IDENTIFIER_KINDS)
    weak: frozenset[str] = WEAK_KINDS
    sources: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def kinds_for(self, source: str) -> frozenset[str]:
        return self.sources.get(source, self.match)


def load_rules(policy_text: str, *, where: str = "policy") -> MatchRules:
    """The `[identity]` table of a policy file; the defaults when it has none."""
    try:
        doc = tomllib.loads(policy_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    table = doc.get("identity")
    if table is None:
        return MatchRules()
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [identity] must be a table")
    unknown = sorted(set(table) - {"match", "weak", "sources"})
    if unknown:
        raise ConfigError(f"{where}: [identity] has unknown key {unknown[0]!r}")
    match = _kinds(table.get("match", list(IDENTIFIER_KINDS)), f"{where}: identity.match")
    weak = _kinds(table.get("weak", sorted(WEAK_KINDS)), f"{where}: identity.weak")
    sources: dict[str, frozenset[str]] = {}
    raw_sources = table.get("sources", {})
    if not isinstance(raw_sources, dict):
        raise ConfigError(f"{where}: identity.sources must be a table")
    for name, entry in raw_sources.items():
        if not isinstance(entry, dict) or set(entry) - {"match"}:
            raise ConfigError(f"{where}: identity.sources.{name} takes only 'match'")
        sources[str(name)] = _kinds(entry.get("match", []),
                                    f"{where}: identity.sources.{name}.match")
    return MatchRules(match=match, weak=weak, sources=sources)


def _kinds(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of identifier kinds")
    bad = sorted(set(value) - set(IDENTIFIER_KINDS))
    if bad:
        raise ConfigError(f"{where}: unknown identifier kind {bad[0]!r}; one of "
                          f"{', '.join(IDENTIFIER_KINDS)}")
    return frozenset(value)
