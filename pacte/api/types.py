"""The GraphQL object types of the customer graph, over the session's views.

Each type wraps a view the session returned, so it holds only what the purpose may
reveal. Related records (consents, interactions, products) are fetched on demand
through the request's loaders, never from a store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any, TypeVar, cast

import strawberry

from pacte.api.context import PacteInfo
from pacte.api.enums import Channel, ConsentStatus, InteractionKind, Role, enum_value
from pacte.api.loaders import InteractionsKey, Memo, PredictionsKey, RecommendationsKey
from pacte.api.relay import Connection, Node
from pacte.api.selections import camel, customer_fields, interaction_fields
from pacte.clock import from_micros
from pacte.graph.policy import Purpose as PolicyPurpose
from pacte.graph.principals import Principal as PrincipalRecord
from pacte.graph.store import Cursor, Value, encode_cursor
from pacte.graph.views import ConsentChange as ConsentChangeView
from pacte.graph.views import (
    ConsentView,
    CustomerView,
    DeviceView,
    InteractionView,
    ProductView,
    ReviewView,
    Withheld,
)
from pacte.predict import NextBestAction as PredictedAction

__all__ = [
    "Consent",
    "ConsentChange",
    "Customer",
    "CustomerConnection",
    "Device",
    "DeviceTelemetry",
    "Interaction",
    "Principal",
    "Product",
    "Purpose",
    "Review",
    "WithheldField",
    "camel",
    "customer_cursor",
    "customer_fields",
    "interaction_fields",
]


E = TypeVar("E", bound=Enum)


def _text(value: Value) -> str | None:
    # Only text and numbers are ever returned; bytes would be ciphertext.
    if value is None or isinstance(value, bytes | bytearray):
        return None
    return value if isinstance(value, str) else str(value)


def customer_cursor(customer_id: str) -> str:
    """The cursor of a customer (or product) in id order, as `Session.customers` (and
    `Session.products`) page."""
    return encode_cursor(Cursor(0, customer_id))


# `strawberry.ID(text)` is the text itself, through a Python frame (a NewType); `str`
# returns a str as it is, in C.
_ID = cast(Callable[[str], strawberry.ID], str)


@strawberry.type(description="A field left out of the response, and why (need to know).")
class WithheldField:
    field: str = strawberry.field(description="The GraphQL name of the field.")
    reason: str

    @classmethod
    def many(cls, withheld: tuple[Withheld, ...]) -> list[WithheldField]:
        return [cls(field=camel(w.field), reason=w.reason) for w in withheld]


@strawberry.type(description="An item of the catalogue; holds no personal data.")
class Product(Node):
    id: strawberry.ID
    sku: str
    name: str
    category: str
    price: float | None

    @classmethod
    def from_view(cls, view: ProductView) -> Product:
        return cls(id=_ID(view.id), sku=view.sku, name=view.name,
                   category=view.category, price=view.price)


_STATUSES = {m.value: m for m in ConsentStatus}


def _status(value: str) -> ConsentStatus:
    """`ConsentStatus(value)` (which raises on an unknown status), by a dict lookup."""
    member = _STATUSES.get(value)
    return member if member is not None else ConsentStatus(value)


@strawberry.type(description="A customer's consent to a purpose: the latest explicit choice "
                             "on it or on an ancestor decides.")
class Consent:
    purpose: str
    status: ConsentStatus
    at: datetime
    until: datetime | None
    source: str | None
    policy_version: str | None
    decided_by: str | None = strawberry.field(
        description="The purpose the deciding choice was made on: this one or an ancestor.")

    @classmethod
    def from_view(cls, view: ConsentView) -> Consent:
        return cls(purpose=view.purpose, status=_status(view.status), at=view.at,
                   until=view.until,
                   source=view.source, policy_version=view.policy_version,
                   decided_by=view.decided_by)


@strawberry.type(description="A recorded consent choice, and what it leaves in force.")
class ConsentChange:
    purpose: str
    status: ConsentStatus = strawberry.field(description="granted or withdrawn")
    at: datetime
    until: datetime | None
    source: str | None
    policy_version: str | None
    effective: list[Consent] = strawberry.field(
        description="The consent now in force for the purpose and every purpose below it.")

    @classmethod
    def from_view(cls, view: ConsentChangeView) -> ConsentChange:
        r = view.recorded
        return cls(purpose=r.purpose, status=_status(r.status), at=r.at, until=r.until,
                   source=r.source,
                   policy_version=r.policy_version,
                   effective=[Consent.from_view(v) for v in view.effective])


# Scalar fields are plain attributes, filled when the object is built: the schema's
# executor (pacte.api.execution) answers those without a resolver call, many times
# cheaper than a resolver method, and a customer-360 response has a couple of hundred.


@strawberry.type(description="One contact with a customer on one channel.")
class Interaction:
    view: strawberry.Private[InteractionView]
    id: strawberry.ID
    channel: Channel
    kind: InteractionKind
    occurred_at: datetime
    summary: str | None = strawberry.field(description="Free text; null when withheld.")
    amount: float | None = strawberry.field(
        description="Amount of a purchase; null when withheld.")
    # The request's product loader, kept from when the object was built, so that
    # `product` needs no resolve info (none is then built for it, per interaction).
    products: strawberry.Private[Memo[str, ProductView | None]]

    @classmethod
    def from_view(cls, view: InteractionView, *,
                  products: Memo[str, ProductView | None]) -> Interaction:
        fields = view.fields
        amount = fields.get("amount")
        # The view holds only the fields the query selected (see `interaction_fields`):
        # an unselected channel or kind is None here and never returned.
        return cls(view=view, products=products, id=_ID(view.id),
                   channel=_member(_CHANNELS, Channel, fields.get("channel")),
                   kind=_member(_KINDS, InteractionKind, fields.get("kind")),
                   occurred_at=view.occurred_at,
                   summary=_text(fields.get("summary")),
                   amount=float(amount) if isinstance(amount, int | float) else None)

    @strawberry.field
    def withheld(self) -> list[WithheldField]:
        return WithheldField.many(self.view.withheld)

    @strawberry.field
    def product(self) -> Product | None:
        if self.view.product_id is None:
            return None
        view = self.products.load(self.view.product_id)
        return Product.from_view(view) if view is not None else None


@strawberry.type(description="Why one item of a batch was refused (the others still went in).")
class ItemError:
    code: str
    message: str


@strawberry.type(description="What became of one item of `recordInteractions`, by position.")
class InteractionResult:
    index: int = strawberry.field(description="The item's position in the input, from 0.")
    event_id: str
    interaction: Interaction | None = strawberry.field(
        description="The interaction recorded, or the one first recorded under this eventId.")
    error: ItemError | None = strawberry.field(description="Null when the item went in.")


def _member(table: Mapping[str, E], enum: type[E], value: Value) -> Any:
    """`enum_value(enum, value)`, by a dict lookup for the text a store holds (an Enum
    call is a dozen times slower, and an Interaction has two enums); None where the
    query did not select the field (never returned)."""
    return table.get(value) if type(value) is str else enum_value(enum, value)


_CHANNELS = {m.value: m for m in Channel}
_KINDS = {m.value: m for m in InteractionKind}


def _interaction_cursor(view: InteractionView) -> str:
    return view.cursor


_WITHHELD = "Null when withheld (see `withheld`)."


@strawberry.type(description="A person the company serves, as the declared purpose sees them.")
class Customer(Node):
    view: strawberry.Private[CustomerView]
    id: strawberry.ID
    name: str | None = strawberry.field(description=_WITHHELD)
    email: str | None = strawberry.field(description=_WITHHELD)
    phone: str | None = strawberry.field(description=_WITHHELD)
    address: str | None = strawberry.field(description=_WITHHELD)
    birth_date: str | None = strawberry.field(description=_WITHHELD)
    age_band: str | None = strawberry.field(description="Decade of age; null when withheld.")
    segment: str | None = strawberry.field(description="Marketing segment; null when withheld.")
    created_at: datetime | None

    @classmethod
    def from_view(cls, view: CustomerView) -> Customer:
        created = view.get("created_at")
        return cls(view=view, id=strawberry.ID(view.id), name=_text(view.get("name")),
                   email=_text(view.get("email")), phone=_text(view.get("phone")),
                   address=_text(view.get("address")),
                   birth_date=_text(view.get("birth_date")),
                   age_band=_text(view.get("age_band")), segment=_text(view.get("segment")),
                   created_at=from_micros(created) if isinstance(created, int) else None)

    @strawberry.field(description="The fields this purpose may not see, with the reason.")
    def withheld(self) -> list[WithheldField]:
        return WithheldField.many(self.view.withheld)

    @strawberry.field
    def consents(self, info: PacteInfo) -> list[Consent]:
        views = info.context.loaders.consents.load(self.view.id)
        return [Consent.from_view(v) for v in views]

    @strawberry.field(description="Newest first, within the purpose's retention.")
    def interactions(self, info: PacteInfo, first: int | None = 20,
                     after: str | None = None, channel: Channel | None = None
                     ) -> Connection[Interaction]:
        page = info.context.loaders.interactions.load(
            InteractionsKey(self.view.id, 20 if first is None else first, after,
                            channel.value if channel is not None else None,
                            interaction_fields(info, "edges", "node")))
        return Connection.build(page.items, node=partial(Interaction.from_view,
                                                         products=info.context.loaders.product),
                                cursor=_interaction_cursor, has_next=page.has_next, after=after)

    @strawberry.field(description="What the customer bought (empty when purchases are withheld).")
    def products(self, info: PacteInfo) -> list[Product]:
        views = info.context.loaders.bought.load(self.view.id)
        return [Product.from_view(v) for v in views]

    @strawberry.field(description="Often bought together, from consenting customers only.")
    def recommendations(self, info: PacteInfo, first: int | None = 5) -> list[Product]:
        views = info.context.loaders.recommendations.load(
            RecommendationsKey(self.view.id, 5 if first is None else first))
        return [Product.from_view(v) for v in views]

    @strawberry.field(description="The devices the customer registered, within the purpose's "
                                  "retention; empty when the purpose may not use device data "
                                  "(user.device).")
    def devices(self, info: PacteInfo) -> list[Device]:
        return [Device.from_view(v) for v in info.context.session.devices(self.view.id)]

    @strawberry.field(description="The products the customer rated, newest first; empty when "
                                  "the purpose may not use what customers write "
                                  "(user.content).")
    def reviews(self, info: PacteInfo) -> list[Review]:
        return [Review.from_view(v) for v in info.context.session.reviews(self.view.id)]

    @strawberry.field(description="The customers this one referred who are visible under the "
                                  "purpose, within its retention.")
    def referrals(self, info: PacteInfo) -> list[Customer]:
        views = info.context.session.referrals(self.view.id, fields=customer_fields(info))
        return [Customer.from_view(v) for v in views]

    @strawberry.field(description="What to do next for this customer, best first: under "
                                  "personalization only, from consented data only.")
    def next_best_actions(self, info: PacteInfo, first: int | None = 3
                          ) -> list[NextBestAction]:
        actions = info.context.loaders.predictions.load(
            PredictionsKey(self.view.id, 3 if first is None else first))
        return [NextBestAction.from_action(a) for a in actions]


@strawberry.type(name="CustomerConnection",
                 description="A page of customers; pass `pageInfo.endCursor` as `after` for "
                             "the next.")
class CustomerConnection(Connection[Customer]):
    @strawberry.field(description="How many customers the purpose sees in all (under a "
                                  "consent purpose, those who opted in); read only when "
                                  "selected.")
    def total_count(self, info: PacteInfo) -> int:
        return info.context.session.count_customers()


@strawberry.type(description="A device's usage, as its telemetry reported it (user.device).")
class DeviceTelemetry:
    usage_minutes_per_day: int | None
    times_of_use: list[str]
    energy_kwh_30d: float | None

    @classmethod
    def parse(cls, value: Value) -> DeviceTelemetry | None:
        """The summary in a device's telemetry field (JSON), or None when there is none."""
        text = _text(value)
        try:
            data = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        minutes, times, energy = (data.get(k) for k in (
            "usage_minutes_per_day", "times_of_use", "energy_kwh_30d"))
        return cls(
            usage_minutes_per_day=minutes if isinstance(minutes, int)
            and not isinstance(minutes, bool) else None,
            times_of_use=[t for t in times if isinstance(t, str)] if isinstance(times, list)
            else [],
            energy_kwh_30d=float(energy) if isinstance(energy, int | float)
            and not isinstance(energy, bool) else None)


@strawberry.type(description="A connected device a customer owns (e.g. a smart bulb).")
class Device:
    id: strawberry.ID
    device_type: str | None = strawberry.field(description=_WITHHELD)
    model: str | None = strawberry.field(description=_WITHHELD)
    location: str | None = strawberry.field(
        description="Home location, blurred (`lat,lon`); null when withheld (user.location).")
    telemetry: DeviceTelemetry | None = strawberry.field(
        description="Usage summary; null when withheld or never reported.")
    withheld: list[WithheldField]

    @classmethod
    def from_view(cls, view: DeviceView) -> Device:
        f = view.fields
        return cls(id=strawberry.ID(view.id), device_type=_text(f.get("device_type")),
                   model=_text(f.get("model")), location=_text(f.get("location")),
                   telemetry=DeviceTelemetry.parse(f.get("telemetry")),
                   withheld=WithheldField.many(view.withheld))


@strawberry.type(description="A rating a customer gave a product.")
class Review:
    view: strawberry.Private[ReviewView]
    rating: int | None
    at: datetime

    @classmethod
    def from_view(cls, view: ReviewView) -> Review:
        return cls(view=view, rating=view.rating, at=view.at)

    @strawberry.field
    def product(self, info: PacteInfo) -> Product | None:
        view = info.context.loaders.product.load(self.view.product_id)
        return Product.from_view(view) if view is not None else None


@strawberry.type(description="One reason for a next best action, as an advisor may say it.")
class PredictionSignal:
    category: str = strawberry.field(description="The data category it was drawn from.")
    source: str = strawberry.field(
        description="customer (their own data) or customers (what consenting customers did).")
    detail: str = strawberry.field(
        description="The signal in words: values of this customer only, never of others.")
    customers: int | None = strawberry.field(
        description="How many consenting customers it rests on (at least 5), for source "
                    "customers.")


@strawberry.type(description="An action to take for a customer, from consented data only.")
class NextBestAction:
    kind: str = strawberry.field(
        description="device.replace, device.service, offer.follow_up, channel.change or "
                    "contact.at_risk.")
    target: str = strawberry.field(
        description="A device id, a product id, a channel, or empty (the customer).")
    score: float = strawberry.field(description="From 0 to 1; the list is best first.")
    expires_at: datetime
    why: list[PredictionSignal]

    @classmethod
    def from_action(cls, a: PredictedAction) -> NextBestAction:
        return cls(kind=a.kind, target=a.target, score=a.score, expires_at=a.expires_at,
                   why=[PredictionSignal(category=s.category, source=s.source,
                                         detail=s.detail, customers=s.customers)
                        for s in a.why])


@strawberry.type(description="The caller: an app or a person holding an API key.")
class Principal:
    id: strawberry.ID
    name: str
    role: Role
    purposes: list[str]

    @classmethod
    def from_record(cls, p: PrincipalRecord) -> Principal:
        return cls(id=strawberry.ID(p.id), name=p.name, role=Role(p.role),
                   purposes=list(p.purposes))


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
