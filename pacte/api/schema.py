"""The GraphQL schema (DESIGN.md §11): queries, mutations and the hardening around them.

Resolvers reach data only through `info.context.session`, directly or through the
request's loaders; the session decides what is visible, decrypts only what the
purpose may use, and records every use for the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from pacte.api.audit_types import AuditEntry, AuditVerification, ErasureReceipt
from pacte.api.batch import awaits_loads_only
from pacte.api.compiled import CompiledExecutor
from pacte.api.context import PacteInfo
from pacte.api.enums import Channel, InteractionKind
from pacte.api.errors import CLIENT_CODES
from pacte.api.limits import Limits, QueryGuard
from pacte.api.loaders import CustomerKey
from pacte.api.relay import Connection, Node, decode_seq_cursor, encode_seq_cursor
from pacte.api.types import (
    ConsentChange,
    Customer,
    CustomerConnection,
    Interaction,
    InteractionResult,
    ItemError,
    Principal,
    Product,
    Purpose,
    customer_cursor,
    customer_fields,
)
from pacte.errors import InputError, PacteError, PolicyDenied

__all__ = ["Mutation", "Query", "build_schema", "sdl"]

_MAX_PAGE = 100
# Interactions per `recordInteractions` request: enough to stream, bounded per request.
MAX_BATCH = 500


@strawberry.input(description="A new customer (no id), or the fields to change of one.")
class CustomerInput:
    id: strawberry.ID | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    birth_date: str | None = strawberry.field(default=None, description="YYYY-MM-DD")
    segment: str | None = None


@strawberry.input(description="One contact with a customer; replays of `eventId` are ignored.")
class InteractionInput:
    customer_id: strawberry.ID
    channel: Channel
    kind: InteractionKind
    event_id: str = strawberry.field(description="The caller's idempotency key.")
    occurred_at: datetime | None = None
    summary: str | None = None
    product_id: strawberry.ID | None = None
    amount: float | None = None


def _or(value: int | None, default: int) -> int:
    """An explicit null for a page size means the default, as if it were omitted."""
    return default if value is None else value


def _audit_page(entries: list[Any], first: int, after: str | None) -> Connection[AuditEntry]:
    return Connection.build(entries[:first], node=AuditEntry.from_entry,
                            cursor=lambda e: encode_seq_cursor(e.seq),
                            has_next=len(entries) > first, after=after)


# Ids of products start with this; any other id is a customer's (see `Query.node`).
_PRODUCT_PREFIX = "p_"


def _audit_limit(first: int) -> int:
    if not 0 <= first <= _MAX_PAGE:
        raise InputError(f"first must be between 0 and {_MAX_PAGE}")
    # One more than asked tells whether another page follows (up to the session's cap).
    return min(first + 1, _MAX_PAGE)


async def _customer(info: PacteInfo, customer_id: str) -> Customer | None:
    # The fields below it (interactions, products, consents) are then answered
    # from one read where the store can (Neo4j); elsewhere this does nothing.
    info.context.session.prefetch(customer_id)
    view = await info.context.loaders.customer.load(
        CustomerKey(customer_id, customer_fields(info)))
    return Customer.from_view(view) if view is not None else None


def _product(info: PacteInfo, product_id: str) -> Product | None:
    view = info.context.loaders.product.load(product_id)
    return Product.from_view(view) if view is not None else None


@strawberry.type
class Query:
    @strawberry.field(description="The caller, as authenticated by its API key.")
    def me(self, info: PacteInfo) -> Principal:
        return Principal.from_record(info.context.session.principal)

    @strawberry.field(description="The purposes of the policy in force.")
    def purposes(self, info: PacteInfo) -> list[Purpose]:
        return [Purpose.from_policy(p) for p in info.context.session.purposes()]

    @strawberry.field(description="Null when absent or not visible under the purpose.")
    @awaits_loads_only
    async def customer(self, info: PacteInfo, id: strawberry.ID) -> Customer | None:
        return await _customer(info, str(id))

    @strawberry.field(description="Refetch a customer or product by id (Relay), through the "
                                  "same checks as `customer(id:)` and `product(id:)`: null "
                                  "when absent or not visible under the purpose. Ids starting "
                                  f"`{_PRODUCT_PREFIX}` are products; any other is looked up "
                                  "as a customer.")
    @awaits_loads_only
    async def node(self, info: PacteInfo, id: strawberry.ID) -> Node | None:
        if str(id).startswith(_PRODUCT_PREFIX):
            return _product(info, str(id))
        return await _customer(info, str(id))

    @strawberry.field(description="Exact match through the blind index; null when not visible.")
    def customer_by_email(self, info: PacteInfo, email: str) -> Customer | None:
        view = info.context.session.customer_by_email(email, fields=customer_fields(info))
        return Customer.from_view(view) if view is not None else None

    @strawberry.field(description="Exact match through the blind index (the number normalised "
                                  "to E.164); null when not visible. Several customers may "
                                  "share a phone: the first visible in id order.")
    def customer_by_phone(self, info: PacteInfo, phone: str) -> Customer | None:
        view = info.context.session.customer_by_phone(phone, fields=customer_fields(info))
        return Customer.from_view(view) if view is not None else None

    @strawberry.field(description="Customers visible under the purpose, in id order.")
    def customers(self, info: PacteInfo, first: int | None = 20,
                  after: str | None = None) -> CustomerConnection:
        page = info.context.session.customers(first=_or(first, 20), after=after,
                                              fields=customer_fields(info, "edges", "node"))
        return CustomerConnection.build(page.items, node=Customer.from_view,
                                        cursor=lambda v: customer_cursor(v.id),
                                        has_next=page.has_next, after=after)

    @strawberry.field
    def product(self, info: PacteInfo, id: strawberry.ID) -> Product | None:
        return _product(info, str(id))

    @strawberry.field(description="The catalogue, in id order.")
    def products(self, info: PacteInfo, first: int | None = 20,
                 after: str | None = None) -> Connection[Product]:
        page = info.context.session.products(first=_or(first, 20), after=after)
        return Connection.build(page.items, node=Product.from_view,
                                cursor=lambda v: customer_cursor(v.id),
                                has_next=page.has_next, after=after)

    @strawberry.field(description="Audit entries, optionally for one customer, a principal "
                                  "(its id), a purpose, an action, an outcome and a period "
                                  "(`until` exclusive); auditors.")
    def audit_trail(self, info: PacteInfo, customer_id: strawberry.ID | None = None,
                    first: int | None = 50, after: str | None = None,
                    principal: strawberry.ID | None = None, purpose: str | None = None,
                    action: str | None = None, outcome: str | None = None,
                    since: datetime | None = None, until: datetime | None = None
                    ) -> Connection[AuditEntry]:
        first = _or(first, 50)
        entries = info.context.session.audit_trail(
            customer_id=str(customer_id) if customer_id is not None else None,
            first=_audit_limit(first), after=decode_seq_cursor(after),
            principal=str(principal) if principal is not None else None, purpose=purpose,
            action=action, outcome=outcome, since=since, until=until)
        return _audit_page(entries, first, after)

    @strawberry.field(description="Verify the whole audit trail (auditors).")
    def audit_verification(self, info: PacteInfo) -> AuditVerification:
        return AuditVerification.from_report(info.context.session.audit_verification())

    @strawberry.field(description="Who used this customer's data, for what, and when; "
                                  "for the customer, under `self_service`.")
    def my_data_uses(self, info: PacteInfo, customer_id: strawberry.ID,
                     first: int | None = 50, after: str | None = None
                     ) -> Connection[AuditEntry]:
        first = _or(first, 50)
        entries = info.context.session.my_data_uses(
            str(customer_id), first=_audit_limit(first), after=decode_seq_cursor(after))
        return _audit_page(entries, first, after)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a customer (no id) or change the given fields.")
    def upsert_customer(self, info: PacteInfo, input: CustomerInput) -> Customer:
        view = info.context.session.upsert_customer(
            id=str(input.id) if input.id is not None else None, name=input.name,
            email=input.email, phone=input.phone, address=input.address,
            birth_date=input.birth_date, segment=input.segment)
        return Customer.from_view(view)

    @strawberry.mutation(description="Record one contact; idempotent on `input.eventId`.")
    def record_interaction(self, info: PacteInfo, input: InteractionInput) -> Interaction:
        view = info.context.session.record_interaction(
            customer_id=str(input.customer_id), channel=input.channel.value,
            kind=input.kind.value,
            event_id=input.event_id, occurred_at=input.occurred_at, summary=input.summary,
            product_id=str(input.product_id) if input.product_id is not None else None,
            amount=input.amount)
        return Interaction.from_view(view, products=info.context.loaders.product)

    @strawberry.mutation(description="Record many contacts in one request (at most "
                                      f"{MAX_BATCH}); idempotent on each `eventId`, with "
                                      "one result per item, in order: a refused item does "
                                      "not stop the others.")
    def record_interactions(self, info: PacteInfo, input: list[InteractionInput]
                            ) -> list[InteractionResult]:
        if len(input) > MAX_BATCH:
            raise InputError(f"at most {MAX_BATCH} interactions per request")
        session = info.context.session
        results: list[InteractionResult] = []
        for index, item in enumerate(input):
            try:
                view = session.record_interaction(
                    customer_id=str(item.customer_id), channel=item.channel.value,
                    kind=item.kind.value,
                    event_id=item.event_id, occurred_at=item.occurred_at,
                    summary=item.summary,
                    product_id=str(item.product_id) if item.product_id is not None else None,
                    amount=item.amount)
            except PacteError as exc:
                if exc.code not in CLIENT_CODES:
                    raise  # a store or audit failure fails the whole request (G6)
                results.append(InteractionResult(index=index, event_id=item.event_id,
                                                 interaction=None,
                                                 error=ItemError(code=exc.code,
                                                                 message=str(exc))))
                continue
            results.append(InteractionResult(index=index, event_id=item.event_id,
                                             interaction=Interaction.from_view(
                                                 view, products=info.context.loaders.product),
                                             error=None))
        return results

    @strawberry.mutation(description="Record an opt-in (under `self_service`), for the purpose "
                                      "and the purposes below it.")
    def grant_consent(self, info: PacteInfo, customer_id: strawberry.ID, purpose: str,
                      source: str, until: datetime | None = None) -> ConsentChange:
        view = info.context.session.grant_consent(str(customer_id), purpose, source=source,
                                                  until=until)
        return ConsentChange.from_view(view)

    @strawberry.mutation(description="Record an opt-out, for the purpose and the purposes below "
                                      "it; it holds from the next request on.")
    def withdraw_consent(self, info: PacteInfo, customer_id: strawberry.ID,
                         purpose: str) -> ConsentChange:
        return ConsentChange.from_view(info.context.session.withdraw_consent(str(customer_id),
                                                                             purpose))

    @strawberry.mutation(description="Crypto-shred and delete a customer (under `self_service`).")
    def erase_customer(self, info: PacteInfo, customer_id: strawberry.ID) -> ErasureReceipt:
        return ErasureReceipt.from_receipt(info.context.session.erase(str(customer_id)))

    @strawberry.mutation(description="A link to the customer's transparency page (under "
                                      "`self_service`), valid `minutes` (1 to 1440): the "
                                      "path to append to this server's address.")
    def transparency_link(self, info: PacteInfo, customer_id: strawberry.ID,
                          minutes: int | None = 15) -> str:
        links = info.context.links
        if links is None:
            raise PolicyDenied("this server makes no transparency links")
        return links(info.context.session, str(customer_id), _or(minutes, 15))

    @strawberry.mutation(description="Everything held about a customer, for that customer.")
    def export_customer(self, info: PacteInfo, customer_id: strawberry.ID) -> JSON:
        return cast(JSON, info.context.session.export(str(customer_id)))


class PacteSchema(strawberry.Schema):
    """The schema, with error logging left to the HTTP layer (which masks and redacts)."""

    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # strawberry would log each error with its message and traceback; a message may
        # come from a failing library call and hold a value, so nothing is logged here.
        return None


def build_schema(*, dev: bool = False, limits: Limits | None = None) -> strawberry.Schema:
    """The schema, hardened; `dev` allows introspection and field suggestions."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        QueryGuard.factory(limits=limits or Limits(), dev=dev),
    ]
    return PacteSchema(
        query=Query,
        mutation=Mutation,
        # Implementations of Node no field returns directly would be left out otherwise.
        types=[Customer, Product],
        extensions=extensions,
        execution_context_class=CompiledExecutor,
        config=StrawberryConfig(disable_field_suggestions=not dev),
    )


def sdl() -> str:
    """The schema in SDL, as committed in `pacte/api/schema.graphql`."""
    return build_schema().as_str() + "\n"
