"""The policy: purposes, their legal basis, the data categories they may use, retention,
and the analysts' differential-privacy budget.

The policy lives in a TOML file written by `pacte init`. Its version is the SHA-256
of the file's bytes, recorded in every audit entry and consent, so an auditor can
tell which rules were in force. Categories use fideslang names; a grant of a
category covers its sub-categories (`user.contact` covers `user.contact.email`).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pacte.errors import ConfigError
from pacte.graph.operations import Capability, Role

__all__ = [
    "CAPABILITIES",
    "DEFAULT_POLICY_TOML",
    "DEFAULT_PRIVACY_BUDGET",
    "LEGAL_BASES",
    "ROLES",
    "Policy",
    "Purpose",
    "category_covers",
]

LEGAL_BASES = ("consent", "contract", "legal_obligation", "legitimate_interest", "request")
ROLES = tuple(r.value for r in Role)
CAPABILITIES = tuple(c.value for c in Capability)
# Epsilon a principal may spend over all its differentially private releases, when the
# policy file has no [privacy] table.
DEFAULT_PRIVACY_BUDGET = 1.0

DEFAULT_POLICY_TOML = """\
# pacte policy: the purposes data may be used for.
# A purpose may use the data categories listed (fideslang names; a category covers its
# sub-categories). retention_days bounds how old a dated record (interaction, purchase,
# review, device registration, referral) may be to be seen under the purpose (0: no limit).
# Consent (purposes with legal_basis = "consent"; opt-in: no choice means no): the
# latest explicit choice on the purpose or on any of its parents decides. A grant of
# "marketing" covers "marketing.email" until "marketing.email" or "marketing" is
# withdrawn; a later grant of "marketing.email" lets it through again, whatever
# "marketing" said before. An expiry is a withdrawal at its expiry time. Choices of one
# customer are recorded in order, the later one wins; at an equal time a withdrawal wins.
# `may` lists what a purpose (and every purpose below it) may do beyond reading:
# manage_consent, erase, export, own_audit (a customer's own trail and report),
# recommend.
# Changing this file changes the policy version recorded in every audit entry.
version_label = "default-1"

[[purpose]]
id = "service"
legal_basis = "contract"
description = "Serving the customer who bought: support, delivery, account care."
categories = ["user"]
retention_days = 730

[[purpose]]
id = "self_service"
legal_basis = "request"
description = "The customer's own requests: see, export, change consents, be forgotten."
categories = ["user"]
retention_days = 0
may = ["manage_consent", "erase", "export", "own_audit"]

[[purpose]]
id = "marketing"
legal_basis = "consent"
description = "Offers and campaigns on any contact channel."
categories = ["user.name", "user.contact", "user.behavior", "user.financial"]
retention_days = 365

[[purpose]]
id = "marketing.email"
parent = "marketing"
legal_basis = "consent"
description = "Offers by email."
categories = ["user.name", "user.contact.email", "user.behavior", "user.financial"]
retention_days = 365

[[purpose]]
id = "marketing.sms"
parent = "marketing"
legal_basis = "consent"
description = "Offers by text message."
categories = ["user.name", "user.contact.phone_number", "user.behavior", "user.financial"]
retention_days = 180

[[purpose]]
id = "personalization"
legal_basis = "consent"
description = "Recommendations and a tailored experience."
categories = ["user.name", "user.behavior", "user.financial", "user.content", "user.device"]
retention_days = 365
may = ["recommend"]

[[purpose]]
id = "analytics"
legal_basis = "consent"
description = "Pseudonymised aggregate analysis by analysts; never single records."
categories = ["user.behavior", "user.financial", "user.content", "user.device",
              "user.demographic.age_band"]
retention_days = 730
analysts_only = true

[[purpose]]
id = "legal"
legal_basis = "legal_obligation"
description = "Consent records and the audit trail, for auditors; no personal fields."
categories = []
retention_days = 0

# Who is responsible, for the Art. 30 record of processing (`pacte audit
# processing-record`); each key optional: name, address, contact, dpo, representative.
# A purpose may also list its `recipients` and `transfers` (outside the EEA, with their
# safeguards), e.g. recipients = ["Mail provider (processor)"].
# [controller]
# name = "Example Ltd"
# contact = "privacy@acme.test"
# dpo = "dpo@acme.test"

# The differential-privacy budget: the total epsilon each principal may spend on
# noisy releases (`pacte analytics report --epsilon`), kept in the audit trail.
# Set here, by the operator, never by the analyst; [privacy.principals] gives one
# principal (by id) a budget of its own.
[privacy]
budget = 1.0
"""


def category_covers(granted: str, category: str) -> bool:
    """True when a grant of `granted` covers `category` (same or a sub-category)."""
    return category == granted or category.startswith(granted + ".")


@dataclass(frozen=True, slots=True)
class Purpose:
    id: str
    legal_basis: str
    categories: tuple[str, ...]
    retention_days: int
    description: str = ""
    parent: str | None = None
    analysts_only: bool = False
    # For the Art. 30 record: who receives the data, and transfers outside the EEA
    # with their safeguards (free text, as the controller writes them).
    recipients: tuple[str, ...] = ()
    transfers: tuple[str, ...] = ()
    may: tuple[str, ...] = ()  # capabilities beyond reading (pacte.graph.operations)

    @property
    def needs_consent(self) -> bool:
        return self.legal_basis == "consent"

    def may_use(self, category: str | None) -> bool:
        """Whether fields of `category` may be used (structural fields always may)."""
        if category is None:
            return True
        return any(category_covers(g, category) for g in self.categories)


class Policy:
    """A parsed, validated policy file."""

    def __init__(self, purposes: Iterable[Purpose], *, version: str, label: str = "",
                 privacy_budget: float = DEFAULT_PRIVACY_BUDGET,
                 principal_budgets: Mapping[str, float] | None = None,
                 controller: Mapping[str, str] | None = None) -> None:
        self.purposes: dict[str, Purpose] = {p.id: p for p in purposes}
        self.version = version
        self.label = label
        self.controller: dict[str, str] = dict(controller or {})
        self._budget = privacy_budget
        self._budgets = dict(principal_budgets or {})

    def privacy_budget(self, principal_id: str) -> float:
        """The total epsilon `principal_id` may spend on differentially private releases."""
        return self._budgets.get(principal_id, self._budget)

    @classmethod
    def default(cls) -> Policy:
        return cls.parse(DEFAULT_POLICY_TOML, source="default policy")

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, *, source: str = "policy") -> Policy:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: {exc}") from exc  # names the line and column
        raw = doc.get("purpose")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f"{source}: no [[purpose]] tables")
        purposes = [_purpose(entry, n, source) for n, entry in enumerate(raw, 1)]
        if not any("may" in entry for entry in raw if isinstance(entry, Mapping)):
            purposes = [_before_may(p) for p in purposes]
        ids = [p.id for p in purposes]
        for p in purposes:
            if ids.count(p.id) > 1:
                raise ConfigError(f"{source}: purpose {p.id!r} is defined twice")
            if p.parent is not None and p.parent not in ids:
                raise ConfigError(f"{source}: purpose {p.id!r} has unknown parent {p.parent!r}")
        budget, budgets = _privacy(doc.get("privacy", {}), source)
        version = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        policy = cls(purposes, version=version, label=str(doc.get("version_label", "")),
                     privacy_budget=budget, principal_budgets=budgets,
                     controller=_controller(doc.get("controller", {}), source))
        for p in purposes:
            policy.ancestors(p.id)  # refuses cycles
        return policy

    def get(self, purpose_id: str) -> Purpose | None:
        return self.purposes.get(purpose_id)

    def ancestors(self, purpose_id: str) -> list[str]:
        """The purpose and its parents, nearest first."""
        chain: list[str] = []
        current: str | None = purpose_id
        while current is not None:
            if current in chain:
                raise ConfigError(f"policy: purpose tree has a cycle at {current!r}")
            chain.append(current)
            current = self.purposes[current].parent
        return chain

    def allows(self, purpose_id: str, capability: Capability) -> bool:
        """Whether the purpose, or one above it, may do `capability` (its `may` list)."""
        return any(capability in self.purposes[p].may for p in self.ancestors(purpose_id))

    def descendants(self, purpose_id: str) -> list[str]:
        """The purpose and every purpose below it, in policy order (the purpose first)."""
        return [purpose_id] + [p for p in self.purposes
                               if p != purpose_id and purpose_id in self.ancestors(p)]

    def summary(self) -> dict[str, object]:
        """Plain data for reports (Art. 30) and the audit trail."""
        return {
            "version": self.version,
            "label": self.label,
            "controller": dict(self.controller) or None,
            "purposes": [
                {
                    "id": p.id,
                    "parent": p.parent,
                    "legal_basis": p.legal_basis,
                    "categories": list(p.categories),
                    "retention_days": p.retention_days,
                    "description": p.description,
                    "recipients": list(p.recipients),
                    "transfers": list(p.transfers),
                }
                for p in self.purposes.values()
            ],
        }


def _purpose(entry: object, n: int, source: str) -> Purpose:
    where = f"{source}: purpose #{n}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: must be a table")
    known = {"id", "parent", "legal_basis", "categories", "retention_days", "description",
             "analysts_only", "recipients", "transfers", "may"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    pid = entry.get("id")
    if not isinstance(pid, str) or not pid or pid != pid.strip().lower():
        raise ConfigError(f"{where}: 'id' must be a lowercase string")
    where = f"{source}: purpose {pid!r}"
    basis, cats, days, parent, may = _checked_fields(entry, where)
    return Purpose(
        id=pid,
        legal_basis=str(basis),
        categories=tuple(cats),
        retention_days=days,
        description=str(entry.get("description", "")),
        parent=parent,
        analysts_only=bool(entry.get("analysts_only", False)),
        recipients=tuple(_strings(entry.get("recipients", []), f"{where}: recipients")),
        transfers=tuple(_strings(entry.get("transfers", []), f"{where}: transfers")),
        may=tuple(may),
    )


def _checked_fields(entry: Mapping[str, object], where: str
                    ) -> tuple[str, list[str], int, str | None, list[str]]:
    """A purpose's legal basis, categories, retention, parent and capabilities, checked."""
    basis = entry.get("legal_basis")
    if not isinstance(basis, str) or basis not in LEGAL_BASES:
        raise ConfigError(f"{where}: legal_basis must be one of {', '.join(LEGAL_BASES)}")
    cats = _strings(entry.get("categories", []), f"{where}: categories")
    days = entry.get("retention_days", 0)
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise ConfigError(f"{where}: retention_days must be a whole number >= 0")
    parent = entry.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise ConfigError(f"{where}: parent must be a purpose id")
    may = entry.get("may", [])
    if not isinstance(may, list) or not all(m in CAPABILITIES for m in may):
        raise ConfigError(f"{where}: may must be a list of {', '.join(CAPABILITIES)}")
    return basis, cats, days, parent, may


# A policy file written before purposes declared their capabilities (`may`) meant these:
# such a file keeps its meaning, and a file that declares `may` anywhere says it all.
_BEFORE_MAY = {"self_service": ("manage_consent", "erase", "export", "own_audit"),
               "personalization": ("recommend",)}


def _before_may(purpose: Purpose) -> Purpose:
    may = _BEFORE_MAY.get(purpose.id)
    return purpose if may is None else replace(purpose, may=may)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return list(value)


# The [controller] table: who is responsible, for the Art. 30 record (Art. 30(1)(a)).
CONTROLLER_KEYS = ("name", "address", "contact", "dpo", "representative")


def _controller(table: object, source: str) -> dict[str, str]:
    where = f"{source}: [controller]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - set(CONTROLLER_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known: "
                          + ", ".join(CONTROLLER_KEYS))
    for key, value in table.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string")
    return {k: str(table[k]) for k in CONTROLLER_KEYS if table.get(k)}


def _privacy(table: object, source: str) -> tuple[float, dict[str, float]]:
    """The [privacy] table: the default budget and the per-principal ones."""
    where = f"{source}: [privacy]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - {"budget", "principals"})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
    principals = table.get("principals", {})
    if not isinstance(principals, Mapping):
        raise ConfigError(f"{where}: principals must be a table of principal id = budget")
    budgets = {str(pid): _budget(value, f"{where} principals.{pid}")
               for pid, value in principals.items()}
    return _budget(table.get("budget", DEFAULT_PRIVACY_BUDGET), f"{where} budget"), budgets


def _budget(value: object, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) \
            or not 0 <= value < float("inf"):
        raise ConfigError(f"{where} must be a finite number >= 0 (an epsilon)")
    return float(value)
