"""What a session returns: plain records holding only what the purpose may reveal.

The records of rows (customers, interactions, devices, consents) are built afresh for
each request and handed to its caller alone, never shared with another request: they
are plain slotted records, since a frozen dataclass costs five times as much to build
and a customer-360 builds some forty of them. A `ProductView` holds catalogue data only
and is shared between requests (pacte.features.products keeps the view of a product
node it read): it stays frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from pacte.graph.store import Value

__all__ = [
    "ConsentChange",
    "ConsentView",
    "CustomerView",
    "DeviceView",
    "Explanation",
    "InteractionView",
    "Page",
    "ProductView",
    "ProjectedCustomer",
    "ReviewView",
    "Withheld",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Withheld:
    """A field left out of a response, and why (G4)."""

    field: str
    reason: str


@dataclass(slots=True)
class CustomerView:
    id: str
    fields: dict[str, Value]
    withheld: tuple[Withheld, ...] = ()

    def get(self, name: str) -> Value:
        return self.fields.get(name)


@dataclass(slots=True)
class InteractionView:
    id: str
    customer_id: str
    occurred_at: datetime
    fields: dict[str, Value]
    product_id: str | None = None
    withheld: tuple[Withheld, ...] = ()
    cursor: str = ""

    def get(self, name: str) -> Value:
        return self.fields.get(name)


@dataclass(slots=True)
class DeviceView:
    id: str
    fields: dict[str, Value]
    withheld: tuple[Withheld, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductView:
    id: str
    sku: str
    name: str
    category: str
    price: float | None


@dataclass(frozen=True, slots=True)
class ReviewView:
    """A product a customer rated, and when."""

    product_id: str
    at: datetime
    rating: int | None


@dataclass(slots=True)
class ConsentView:
    """A customer's consent to `purpose`: the explicit choice that decides it.

    `decided_by` names the purpose that choice was made on: `purpose` itself, or an
    ancestor whose later choice covers it (see pacte.graph.consent).
    """

    purpose: str
    status: str
    at: datetime
    until: datetime | None
    source: str | None
    policy_version: str | None = None
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A recorded choice, and the consent it leaves to every purpose it touched.

    `effective` holds the purpose and each purpose below it in the policy, as the rule
    now decides them (the purpose's ancestors are not touched by a choice on it).
    """

    recorded: ConsentView
    effective: tuple[ConsentView, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    end_cursor: str | None
    has_next: bool


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a request would reveal and withhold, computed without decrypting anything."""

    purpose: str
    legal_basis: str
    consent_required: bool
    retention_days: int
    revealed: list[str] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)
    subject_visible: bool | None = None
    # For a visible customer under a consent purpose, the choice that let them through.
    consent: ConsentView | None = None


@dataclass(frozen=True, slots=True)
class ProjectedCustomer:
    """One consented customer as an analyst's projection sees them (G9).

    `id` is the real id: the analytics layer replaces it with a pseudonym keyed per
    export before anything leaves. Only fields the purpose may use are present.
    """

    id: str
    fields: dict[str, Value]
    # (product id, time, amount)
    purchases: list[tuple[str, datetime, float | None]] = field(default_factory=list)
    # (product id, time, rating)
    reviews: list[tuple[str, datetime, int | None]] = field(default_factory=list)
    # (time, channel, kind, product id)
    interactions: list[tuple[datetime, str, str, str | None]] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    referred: list[str] = field(default_factory=list)
