"""Per-request DataLoaders over the session, so sibling fields share round trips.

A page of customers asks for each customer's consents, products and interactions;
the loaders collect those keys while the page resolves and hand them to the session
together. Customers are fetched in one call (`Session.customers_by_id`). The other
loaders call the session once per distinct key until it offers batched reads; they
still dedupe repeated keys within the request.

Loaders are built with the request's session and die with it: nothing loaded for one
request (or one purpose) can be served to another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from strawberry.dataloader import DataLoader

from pacte.errors import InputError, PacteError
from pacte.graph.views import ConsentView, CustomerView, InteractionView, Page, ProductView

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["InteractionsKey", "Loaders", "RecommendationsKey"]

K = TypeVar("K")
V = TypeVar("V")

_MAX_ID = 100


@dataclass(frozen=True, slots=True)
class InteractionsKey:
    customer_id: str
    first: int
    after: str | None
    channel: str | None


@dataclass(frozen=True, slots=True)
class RecommendationsKey:
    customer_id: str
    first: int


def _each(keys: Sequence[K], fetch: Callable[[K], V]) -> list[V | BaseException]:
    """One session call per key; a refusal for one key does not fail its siblings."""
    out: list[V | BaseException] = []
    for key in keys:
        try:
            out.append(fetch(key))
        except PacteError as exc:
            out.append(exc)
    return out


class Loaders:
    """The DataLoaders of one request."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.customer: DataLoader[str, CustomerView | None] = DataLoader(self._customers)
        self.product: DataLoader[str, ProductView | None] = DataLoader(self._products)
        self.consents: DataLoader[str, list[ConsentView]] = DataLoader(self._consents)
        self.bought: DataLoader[str, list[ProductView]] = DataLoader(self._bought)
        self.interactions: DataLoader[InteractionsKey, Page[InteractionView]] = DataLoader(
            self._interactions)
        self.recommendations: DataLoader[RecommendationsKey, list[ProductView]] = DataLoader(
            self._recommendations)

    async def _customers(self, ids: list[str]) -> list[CustomerView | BaseException | None]:
        # A malformed id must not fail the well-formed ones batched with it.
        bad = {i for i in ids if not isinstance(i, str) or not 0 < len(i) <= _MAX_ID}
        good = [i for i in ids if i not in bad]
        found = self._session.customers_by_id(good) if good else {}
        return [InputError("ids are 1 to 100 characters") if i in bad else found.get(i)
                for i in ids]

    async def _products(self, ids: list[str]) -> list[ProductView | BaseException | None]:
        return _each(ids, self._session.product)

    async def _consents(self, ids: list[str]) -> list[list[ConsentView] | BaseException]:
        return _each(ids, self._session.consents)

    async def _bought(self, ids: list[str]) -> list[list[ProductView] | BaseException]:
        return _each(ids, self._session.products_of)

    async def _interactions(self, keys: list[InteractionsKey]
                            ) -> list[Page[InteractionView] | BaseException]:
        return _each(keys, lambda k: self._session.interactions(
            k.customer_id, first=k.first, after=k.after, channel=k.channel))

    async def _recommendations(self, keys: list[RecommendationsKey]
                               ) -> list[list[ProductView] | BaseException]:
        return _each(keys, lambda k: self._session.recommendations(k.customer_id,
                                                                   first=k.first))
