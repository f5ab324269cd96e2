"""Each operation of the door declared once: its action, who may ask for it, what the
purpose must allow, whether it returns single records, and what its audit entry names.

`Session._gate(action)` checks an operation against its declaration before a feature
reads or writes anything (pacte.features), so the rules live here rather than in
checks repeated line by line. What a purpose may do beyond reading (manage consent,
erase, export, recommend, show a customer their own trail) is a `Capability` the
policy file grants (`may = [...]` on a purpose, see pacte.graph.policy): a new purpose
that may erase is one edit of policy.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["OPERATIONS", "Action", "Capability", "Operation", "Role"]


class Role(StrEnum):
    """What a principal is; each API key has one."""

    APP = "app"  # acts for customers: their reads, writes, consents and rights
    AUDITOR = "auditor"  # the trail and reports, never a personal field
    ANALYST = "analyst"  # projections under an analysts-only purpose, never single records
    ADMIN = "admin"  # the operator: anything a role may, and ingestion


class Capability(StrEnum):
    """What a purpose may do beyond reading the categories it lists (policy `may`)."""

    MANAGE_CONSENT = "manage_consent"  # record the customer's grants and withdrawals
    ERASE = "erase"  # crypto-shred a customer at their request (Art. 17)
    EXPORT = "export"  # hand a customer everything held about them (Art. 15, 20)
    OWN_AUDIT = "own_audit"  # show a customer the uses of their data, and their report
    RECOMMEND = "recommend"  # recommendations from consenting customers' purchases


class Action(StrEnum):
    """The action an audit entry names."""

    SESSION_OPEN = "session.open"
    CUSTOMER_READ = "customer.read"
    CUSTOMER_LOOKUP = "customer.lookup"
    CUSTOMER_LIST = "customer.list"
    CUSTOMER_COUNT = "customer.count"
    CUSTOMER_REFERRALS = "customer.referrals"
    CUSTOMER_WRITE = "customer.write"
    CUSTOMER_ERASE = "customer.erase"
    CUSTOMER_EXPORT = "customer.export"
    CUSTOMER_LINK = "customer.link"
    INTERACTION_LIST = "interaction.list"
    INTERACTION_WRITE = "interaction.write"
    PRODUCT_LIST = "product.list"
    PRODUCT_READ = "product.read"
    PRODUCT_BUYERS = "product.buyers"
    DEVICE_LIST = "device.list"
    REVIEW_LIST = "review.list"
    CONSENT_READ = "consent.read"
    CONSENT_HISTORY = "consent.history"
    CONSENT_GRANT = "consent.grant"
    CONSENT_WITHDRAW = "consent.withdraw"
    EXPLAIN = "explain"
    RECOMMENDATIONS = "recommendations"
    PREDICT = "predict"
    PREDICT_PEERS = "predict.peers"
    INGEST = "ingest"
    ANALYTICS_PROJECT = "analytics.project"
    POLICY_READ = "policy.read"
    STATS = "stats"
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    AUDIT_LOOKUP = "audit.lookup"
    AUDIT_TRACE = "audit.trace"
    AUDIT_ACCESS_REPORT = "audit.access_report"
    AUDIT_PROCESSING_RECORD = "audit.processing_record"
    AUDIT_SELF = "audit.self"
    IDENTITY_TOKEN = "identity.token"  # noqa: S105 (an action name, not a secret)
    IDENTITY_LOOKUP = "identity.lookup"
    IDENTITY_EXPLAIN = "identity.explain"
    IDENTITY_READ = "identity.read"
    IDENTITY_MERGE = "identity.merge"
    IDENTITY_UNMERGE = "identity.unmerge"


@dataclass(frozen=True, slots=True)
class Operation:
    """What `Session._gate` checks, in this order: single records, role, capability."""

    action: Action
    audits: str  # what its audit entry names (subjects, fields, extras)
    roles: frozenset[Role] | None = None  # None: any role the purpose admits
    capability: Capability | None = None  # the purpose (or a parent) must be granted it
    single_records: bool = False  # returns single customers' records: never to analysts


# The roles that act for customers: their consents, their writes, their rights.
CUSTOMER_AGENTS = frozenset({Role.APP, Role.ADMIN})
_OVERSIGHT = frozenset({Role.AUDITOR, Role.ADMIN})
_ANALYSTS = frozenset({Role.ANALYST, Role.ADMIN})
_OPERATOR = frozenset({Role.ADMIN})


def _declare(*ops: Operation) -> Mapping[Action, Operation]:
    return {op.action: op for op in ops}


OPERATIONS: Mapping[Action, Operation] = _declare(
    Operation(Action.CUSTOMER_READ, "the customers and the fields opened",
              single_records=True),
    Operation(Action.CUSTOMER_LOOKUP, "the customer found and the fields opened",
              single_records=True),
    Operation(Action.CUSTOMER_LIST, "the customers of the page and the fields opened",
              single_records=True),
    Operation(Action.CUSTOMER_COUNT, "the count", single_records=True),
    Operation(Action.CUSTOMER_REFERRALS, "the customer and those referred",
              single_records=True),
    Operation(Action.INTERACTION_LIST, "the customer and the fields opened",
              single_records=True),
    Operation(Action.PRODUCT_LIST, "the customer (BOUGHT)", single_records=True),
    Operation(Action.PRODUCT_BUYERS, "the buyers shown", single_records=True),
    Operation(Action.DEVICE_LIST, "the customer and the fields opened", single_records=True),
    Operation(Action.REVIEW_LIST, "the customer (REVIEWED)", single_records=True),
    Operation(Action.CONSENT_READ, "the customer", single_records=True),
    Operation(Action.CONSENT_HISTORY, "the customer", single_records=True),
    Operation(Action.RECOMMENDATIONS, "the customer and every co-buyer whose purchases "
              "shaped the answer", single_records=True),
    Operation(Action.PREDICT, "the customer, the kinds of action served and the "
              "categories they were drawn from", single_records=True,
              capability=Capability.RECOMMEND),
    Operation(Action.PREDICT_PEERS, "the customer and every customer counted",
              single_records=True, capability=Capability.RECOMMEND),
    Operation(Action.AUDIT_SELF, "the customer", single_records=True,
              capability=Capability.OWN_AUDIT),
    Operation(Action.CUSTOMER_WRITE, "the customer and the fields written, before the write",
              roles=CUSTOMER_AGENTS),
    Operation(Action.INTERACTION_WRITE, "the customer and the fields written, before the "
              "write", roles=CUSTOMER_AGENTS),
    Operation(Action.CONSENT_GRANT, "the customer, the purpose and the source, before the "
              "write", roles=CUSTOMER_AGENTS, capability=Capability.MANAGE_CONSENT),
    Operation(Action.CONSENT_WITHDRAW, "the customer, the purpose and the source, before "
              "the write", roles=CUSTOMER_AGENTS, capability=Capability.MANAGE_CONSENT),
    Operation(Action.CUSTOMER_ERASE, "the customer and what was destroyed, before the keys "
              "go", roles=CUSTOMER_AGENTS, capability=Capability.ERASE),
    Operation(Action.CUSTOMER_EXPORT, "the customer and every field", roles=CUSTOMER_AGENTS,
              capability=Capability.EXPORT),
    Operation(Action.CUSTOMER_LINK, "the customer a transparency link was made for",
              roles=CUSTOMER_AGENTS, capability=Capability.OWN_AUDIT),
    Operation(Action.INGEST, "each batch's counts, before its write", roles=_OPERATOR),
    Operation(Action.ANALYTICS_PROJECT, "each batch's customers and the fields opened",
              roles=_ANALYSTS),
    Operation(Action.STATS, "nothing personal", roles=_OPERATOR),
    Operation(Action.AUDIT_READ, "the customer asked about, if any", roles=_OVERSIGHT),
    Operation(Action.AUDIT_VERIFY, "the outcome", roles=_OVERSIGHT),
    Operation(Action.AUDIT_LOOKUP, "every customer whose email token matched (no field "
              "opened)", roles=_OVERSIGHT),
    Operation(Action.AUDIT_TRACE, "the customer", roles=_OVERSIGHT),
    Operation(Action.AUDIT_ACCESS_REPORT, "the customer", roles=_OVERSIGHT),
    Operation(Action.AUDIT_PROCESSING_RECORD, "nothing personal", roles=_OVERSIGHT),
    Operation(Action.IDENTITY_TOKEN, "nothing (tokens are computed, not read)",
              roles=_OPERATOR),
    Operation(Action.IDENTITY_LOOKUP, "the customers found, never the tokens",
              roles=_OPERATOR),
    Operation(Action.IDENTITY_EXPLAIN, "the customer", roles=_OPERATOR),
    Operation(Action.IDENTITY_READ, "the customers and parts whose stored graph was read "
              "for a merge", roles=_OPERATOR),
    Operation(Action.IDENTITY_MERGE, "both customers, the rule, identifier kinds and blind "
              "refs, before the write", roles=_OPERATOR),
    Operation(Action.IDENTITY_UNMERGE, "both customers and what went back, before the "
              "write", roles=_OPERATOR),
    Operation(Action.PRODUCT_READ, "the products read (no customer)"),
    Operation(Action.EXPLAIN, "the customer asked about, if any"),
    Operation(Action.POLICY_READ, "nothing personal"),
    Operation(Action.SESSION_OPEN, "the refusal of a purpose (admission, Session._admit)"),
)
