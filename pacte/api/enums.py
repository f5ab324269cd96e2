"""The GraphQL enums: closed sets of values the model defines.

Each value is named as the string the API took and returned before it had enums
(lowercase is valid GraphQL), so a client sending `"channel": "email"` in its JSON
variables is understood as before; only a value written inline in a document loses
its quotes (`channel: email`). Purposes stay strings: they come from the policy file.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry

__all__ = ["Channel", "ConsentStatus", "InteractionKind", "Outcome", "Role", "enum_value"]

E = TypeVar("E", bound=Enum)


@strawberry.enum(description="A contact channel (pacte.graph.model.CHANNELS).")
class Channel(Enum):
    email = "email"
    phone = "phone"
    chat = "chat"
    sms = "sms"
    web = "web"
    app = "app"
    store = "store"
    social = "social"
    iot = "iot"


@strawberry.enum(description="What a contact was (pacte.graph.model.INTERACTION_KINDS).")
class InteractionKind(Enum):
    purchase = "purchase"
    support = "support"
    review = "review"
    visit = "visit"
    campaign = "campaign"
    telemetry = "telemetry"


@strawberry.enum(description="A consent's state: an expiry is a withdrawal at its date.")
class ConsentStatus(Enum):
    granted = "granted"
    withdrawn = "withdrawn"
    expired = "expired"


@strawberry.enum(description="What a principal is (pacte.graph.policy.ROLES).")
class Role(Enum):
    app = "app"
    auditor = "auditor"
    analyst = "analyst"
    admin = "admin"


@strawberry.enum(description="How a recorded use of data ended.")
class Outcome(Enum):
    ok = strawberry.enum_value("ok", description="Done.")
    not_found = strawberry.enum_value(
        "not_found", description="Absent, or not visible under the purpose (the same).")
    withheld = strawberry.enum_value(
        "withheld", description="The purpose may not use the data asked for: none returned.")
    denied = strawberry.enum_value("denied", description="Refused (purpose, role, budget).")
    bad_input = strawberry.enum_value("bad_input", description="A malformed argument.")
    failed = strawberry.enum_value(
        "failed", description="A store or the audit trail failed; nothing was written.")
    duplicate = strawberry.enum_value(
        "duplicate", description="A replayed idempotency key: nothing new recorded.")
    started = strawberry.enum_value(
        "started", description="An operation put on record before it runs (key rotation).")
    resumed = strawberry.enum_value(
        "resumed", description="An interrupted erasure, finished on the next open.")
    scrub_pending = strawberry.enum_value(
        "scrub_pending", description="Erased, but the files could not yet be rewritten.")
    reapplied = strawberry.enum_value(
        "reapplied", description="An erasure done again on open, after a restore of an "
        "older backup brought the customer back.")
    incomplete = strawberry.enum_value(
        "incomplete", description="Made, but not all of its aftermath (a revoked key whose "
                                  "stamp could not move: run it again).")
    other = strawberry.enum_value(
        "other", description="An outcome this version does not know; `record` holds it.")


def enum_value(enum: type[E], value: object, *, default: E | None = None) -> E | None:
    """The member of `enum` whose value is `value`, else `default` (for recorded text)."""
    try:
        return enum(value)
    except ValueError:
        return default
