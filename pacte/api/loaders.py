"""Per-request loaders over the session: sibling fields share round trips.

`customer` is a `Batch` (a DataLoader under an event loop, and batched without one:
pacte.api.batch): the customers asked for by sibling fields (aliases of
`customer(id:)`) are collected while they resolve and fetched in one call
(`Session.customers_by_id`). The other loaders are plain memos: the session has no
batched read for consents, purchases, interactions, recommendations or products yet,
so a DataLoader would still call it once per key, and only cost each field an
awaitable, a future and a task (about a tenth of a customer-360 request). A memo
makes the same calls, dedupes repeated keys within the request the same way, and
lets those resolvers stay synchronous. When the session offers a batched read for
one of them, turn that loader back into a DataLoader.

The keys of customers and interactions name the fields the query returns, so the
session opens only those (DESIGN.md §9: decrypt only what is returned).

Loaders are built with the request's session and die with it: nothing loaded for one
request (or one purpose) can be served to another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from pacte.api.batch import Batch
from pacte.errors import InputError, PacteError
from pacte.graph.views import ConsentView, CustomerView, InteractionView, Page, ProductView
from pacte.predict import NextBestAction, next_best_actions

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["CustomerKey", "InteractionsKey", "Loaders", "Memo", "PredictionsKey",
           "RecommendationsKey"]

K = TypeVar("K")
V = TypeVar("V")

_MAX_ID = 100


@dataclass(frozen=True, slots=True)
class CustomerKey:
    customer_id: str
    fields: frozenset[str]  # the view fields to open (see pacte.api.types.customer_fields)


@dataclass(frozen=True, slots=True)
class InteractionsKey:
    customer_id: str
    first: int
    after: str | None
    channel: str | None
    # Part of the key: two selections of one page asking for different fields are two
    # reads (rare; a memo cannot wait to merge them as the customer DataLoader does).
    fields: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class PredictionsKey:
    customer_id: str
    first: int


@dataclass(frozen=True, slots=True)
class RecommendationsKey:
    customer_id: str
    first: int


class Memo(Generic[K, V]):
    """One session call per distinct key, remembered (result or refusal) for the request.

    A refusal (a PacteError) for one key is raised to the fields asking for that key
    only, as a DataLoader would, and is not asked again.
    """

    __slots__ = ("_fetch", "_seen")

    def __init__(self, fetch: Callable[[K], V]) -> None:
        self._fetch = fetch
        self._seen: dict[K, V | PacteError] = {}

    def prime(self, key: K, value: V) -> None:
        """Remember a value fetched by a batched read, unless the key is known already."""
        self._seen.setdefault(key, value)

    def load(self, key: K) -> V:
        try:
            found = self._seen[key]
        except KeyError:
            try:
                found = self._fetch(key)
            except PacteError as exc:
                found = exc
            self._seen[key] = found
        if isinstance(found, PacteError):
            raise found
        return found


class Loaders:
    """The loaders of one request."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.customer: Batch[CustomerKey, CustomerView | None] = Batch(self._customers)
        self.product: Memo[str, ProductView | None] = Memo(session.product)
        self.consents: Memo[str, list[ConsentView]] = Memo(session.consents)
        self.bought: Memo[str, list[ProductView]] = Memo(session.products_of)
        self.interactions: Memo[InteractionsKey, Page[InteractionView]] = Memo(
            self._interactions)
        self.recommendations: Memo[RecommendationsKey, list[ProductView]] = Memo(
            lambda k: session.recommendations(k.customer_id, first=k.first))
        self.predictions: Memo[PredictionsKey, list[NextBestAction]] = Memo(
            lambda k: next_best_actions(session, k.customer_id, first=k.first))

    def _interactions(self, k: InteractionsKey) -> Page[InteractionView]:
        page = self._session.interactions(k.customer_id, first=k.first, after=k.after,
                                          channel=k.channel, fields=k.fields)
        # The products of a page are read together, once, instead of one by one as
        # each interaction's `product` field resolves.
        wanted = sorted({v.product_id for v in page.items if v.product_id is not None})
        if wanted:
            found = self._session.products_by_id(wanted)
            for pid in wanted:
                self.product.prime(pid, found.get(pid))
        return page

    def _customers(self, keys: list[CustomerKey]) -> list[CustomerView | BaseException | None]:
        # A malformed id must not fail the well-formed ones batched with it.
        bad = {k.customer_id for k in keys
               if not isinstance(k.customer_id, str) or not 0 < len(k.customer_id) <= _MAX_ID}
        # Each customer is opened once, for the union of the fields its keys ask for
        # (aliases of one customer selecting different fields): no field is decrypted
        # twice, and none that no selection of that customer returns. A union over the
        # whole batch would open, for one customer, fields only another one's selection
        # returns. Customers asked for the same fields (the usual case: one selection,
        # or aliases repeating it) are still read in one call.
        wanted: dict[str, set[str]] = {}
        for k in keys:
            if k.customer_id not in bad:
                wanted.setdefault(k.customer_id, set()).update(k.fields)
        groups: dict[frozenset[str], list[str]] = {}
        for cid, fields in wanted.items():
            groups.setdefault(frozenset(fields), []).append(cid)
        found: dict[str, CustomerView] = {}
        for fields_, ids in groups.items():
            found.update(self._session.customers_by_id(ids, fields=fields_))
        return [InputError("ids are 1 to 100 characters") if k.customer_id in bad
                else found.get(k.customer_id) for k in keys]
