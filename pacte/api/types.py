"""The GraphQL object types of the customer graph, over the session's views.

Each type wraps a view the session returned, so it holds only what the purpose may
reveal. Related records (consents, interactions, products) are fetched on demand
through the request's DataLoaders, never from a store.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from pacte.api.context import PacteInfo
from pacte.api.loaders import InteractionsKey, RecommendationsKey
from pacte.api.relay import Connection
from pacte.clock import from_micros
from pacte.graph.policy import Purpose as PolicyPurpose
from pacte.graph.principals import Principal as PrincipalRecord
from pacte.graph.store import Cursor, Value, encode_cursor
from pacte.graph.views import (
    ConsentView,
    CustomerView,
    InteractionView,
    ProductView,
    Withheld,
)

__all__ = [
    "Consent",
    "Customer",
    "Interaction",
    "Principal",
    "Product",
    "Purpose",
    "WithheldField",
    "camel",
    "customer_cursor",
]


def camel(name: str) -> str:
    """The GraphQL name of a catalogue field (`birth_date` -> `birthDate`)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _text(value: Value) -> str | None:
    # Only text and numbers are ever returned; bytes would be ciphertext.
    if value is None or isinstance(value, bytes | bytearray):
        return None
    return value if isinstance(value, str) else str(value)


def customer_cursor(customer_id: str) -> str:
    """The cursor of a customer in id order (as `Session.customers` pages)."""
    return encode_cursor(Cursor(0, customer_id))


@strawberry.type(description="A field left out of the response, and why (need to know).")
class WithheldField:
    field: str = strawberry.field(description="The GraphQL name of the field.")
    reason: str

    @classmethod
    def many(cls, withheld: tuple[Withheld, ...]) -> list[WithheldField]:
        return [cls(field=camel(w.field), reason=w.reason) for w in withheld]


@strawberry.type(description="An item of the catalogue; holds no personal data.")
class Product:
    id: strawberry.ID
    sku: str
    name: str
    category: str
    price: float | None

    @classmethod
    def from_view(cls, view: ProductView) -> Product:
        return cls(id=strawberry.ID(view.id), sku=view.sku, name=view.name,
                   category=view.category, price=view.price)


@strawberry.type(description="A customer's consent to one purpose, as it stands now.")
class Consent:
    purpose: str
    status: str = strawberry.field(description="granted, withdrawn or expired")
    at: datetime
    until: datetime | None
    source: str | None
    policy_version: str | None

    @classmethod
    def from_view(cls, view: ConsentView) -> Consent:
        return cls(purpose=view.purpose, status=view.status, at=view.at, until=view.until,
                   source=view.source, policy_version=view.policy_version)


@strawberry.type(description="One contact with a customer on one channel.")
class Interaction:
    view: strawberry.Private[InteractionView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.view.id)

    @strawberry.field
    def channel(self) -> str:
        return _text(self.view.get("channel")) or ""

    @strawberry.field
    def kind(self) -> str:
        return _text(self.view.get("kind")) or ""

    @strawberry.field
    def occurred_at(self) -> datetime:
        return self.view.occurred_at

    @strawberry.field(description="Free text; null when withheld.")
    def summary(self) -> str | None:
        return _text(self.view.get("summary"))

    @strawberry.field(description="Amount of a purchase; null when withheld.")
    def amount(self) -> float | None:
        value = self.view.get("amount")
        return float(value) if isinstance(value, int | float) else None

    @strawberry.field
    def withheld(self) -> list[WithheldField]:
        return WithheldField.many(self.view.withheld)

    @strawberry.field
    async def product(self, info: PacteInfo) -> Product | None:
        if self.view.product_id is None:
            return None
        view = await info.context.loaders.product.load(self.view.product_id)
        return Product.from_view(view) if view is not None else None


def _interaction_cursor(view: InteractionView) -> str:
    return view.cursor


@strawberry.type(description="A person the company serves, as the declared purpose sees them.")
class Customer:
    view: strawberry.Private[CustomerView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.view.id)

    @strawberry.field(description="Null when withheld (see `withheld`).")
    def name(self) -> str | None:
        return _text(self.view.get("name"))

    @strawberry.field(description="Null when withheld (see `withheld`).")
    def email(self) -> str | None:
        return _text(self.view.get("email"))

    @strawberry.field(description="Null when withheld (see `withheld`).")
    def phone(self) -> str | None:
        return _text(self.view.get("phone"))

    @strawberry.field(description="Null when withheld (see `withheld`).")
    def address(self) -> str | None:
        return _text(self.view.get("address"))

    @strawberry.field(description="Null when withheld (see `withheld`).")
    def birth_date(self) -> str | None:
        return _text(self.view.get("birth_date"))

    @strawberry.field(description="Decade of age; null when withheld.")
    def age_band(self) -> str | None:
        return _text(self.view.get("age_band"))

    @strawberry.field(description="Marketing segment; null when withheld.")
    def segment(self) -> str | None:
        return _text(self.view.get("segment"))

    @strawberry.field
    def created_at(self) -> datetime | None:
        value = self.view.get("created_at")
        return from_micros(value) if isinstance(value, int) else None

    @strawberry.field(description="The fields this purpose may not see, with the reason.")
    def withheld(self) -> list[WithheldField]:
        return WithheldField.many(self.view.withheld)

    @strawberry.field
    async def consents(self, info: PacteInfo) -> list[Consent]:
        views = await info.context.loaders.consents.load(self.view.id)
        return [Consent.from_view(v) for v in views]

    @strawberry.field(description="Newest first, within the purpose's retention.")
    async def interactions(self, info: PacteInfo, first: int | None = 20,
                           after: str | None = None, channel: str | None = None
                           ) -> Connection[Interaction]:
        page = await info.context.loaders.interactions.load(
            InteractionsKey(self.view.id, 20 if first is None else first, after, channel))
        return Connection.build(page.items, node=lambda v: Interaction(view=v),
                                cursor=_interaction_cursor, has_next=page.has_next)

    @strawberry.field(description="What the customer bought (empty when purchases are withheld).")
    async def products(self, info: PacteInfo) -> list[Product]:
        views = await info.context.loaders.bought.load(self.view.id)
        return [Product.from_view(v) for v in views]

    @strawberry.field(description="Often bought together, from consenting customers only.")
    async def recommendations(self, info: PacteInfo, first: int | None = 5) -> list[Product]:
        views = await info.context.loaders.recommendations.load(
            RecommendationsKey(self.view.id, 5 if first is None else first))
        return [Product.from_view(v) for v in views]


@strawberry.type(description="The caller: an app or a person holding an API key.")
class Principal:
    id: strawberry.ID
    name: str
    role: str
    purposes: list[str]

    @classmethod
    def from_record(cls, p: PrincipalRecord) -> Principal:
        return cls(id=strawberry.ID(p.id), name=p.name, role=p.role, purposes=list(p.purposes))


@strawberry.type(description="A purpose of the policy: what data it may use, on what legal basis.")
class Purpose:
    id: str
    parent: str | None
    legal_basis: str
    consent_required: bool
    categories: list[str]
    retention_days: int
    description: str

    @classmethod
    def from_policy(cls, p: PolicyPurpose) -> Purpose:
        return cls(id=p.id, parent=p.parent, legal_basis=p.legal_basis,
                   consent_required=p.needs_consent, categories=list(p.categories),
                   retention_days=p.retention_days, description=p.description)
