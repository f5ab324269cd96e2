"""The per-request context every resolver receives: who asks, for what, and how to reach data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from strawberry.types import Info

from pacte.api.loaders import Loaders

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["Context", "PacteInfo"]


@dataclass(slots=True)
class Context:
    """Built once per HTTP request, after authentication and purpose admission.

    `session` is the only way resolvers reach customer data (G10); `loaders` batch
    its calls and are created with the session, so nothing is shared between
    requests (G5: no cache outlives a request). `links` seals transparency links
    (pacte.console.links) for the `transparencyLink` mutation, after the session has
    allowed and recorded the grant. Nothing else is here: who asks is
    `session.principal`, for what `session.purpose`.
    """

    session: Session
    loaders: Loaders
    links: LinkMaker | None = None

    @classmethod
    def create(cls, session: Session, *, links: LinkMaker | None = None) -> Context:
        return cls(session=session, loaders=Loaders(session), links=links)


# (session, customer id, minutes) -> the path of a sealed link
LinkMaker: TypeAlias = Callable[["Session", str, int], str]


PacteInfo: TypeAlias = Info[Context, None]
