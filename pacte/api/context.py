"""The per-request context every resolver receives: who asks, for what, and how to reach data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from strawberry.types import Info

from pacte.api.loaders import Loaders

if TYPE_CHECKING:
    from pacte.graph.principals import Principal
    from pacte.graph.session import Session
    from pacte.runtime import Pacte

__all__ = ["Context", "PacteInfo"]


@dataclass(slots=True)
class Context:
    """Built once per HTTP request, after authentication and purpose admission.

    `session` is the only way resolvers reach customer data (G10); `loaders` batch
    its calls and are created with the session, so nothing is shared between
    requests (G5: no cache outlives a request).
    """

    pacte: Pacte
    principal: Principal
    purpose: str
    request_id: str
    session: Session
    loaders: Loaders

    @classmethod
    def create(cls, pacte: Pacte, principal: Principal, session: Session) -> Context:
        return cls(pacte=pacte, principal=principal, purpose=session.purpose.id,
                   request_id=session.request_id, session=session,
                   loaders=Loaders(session))


PacteInfo: TypeAlias = Info[Context, None]
