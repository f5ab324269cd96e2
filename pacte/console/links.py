"""Transparency links: a short-lived, sealed link to one customer's page.

An app holding `self_service` creates one on the customer's request (say, from its
"my privacy" menu) and hands it to them. The link names no one in the clear: it is
the sealed pair (app, customer) with an expiry (pacte.console.seal). Following it
opens the page as that app under `self_service` for that customer only; every use is
audited as the app's, and a revoked app's links die with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pacte.clock import from_micros
from pacte.console.seal import Sealer
from pacte.errors import InputError, LinkRefused

if TYPE_CHECKING:
    from pacte.graph.principals import Principal
    from pacte.graph.session import Session
    from pacte.runtime import Pacte

__all__ = ["LINK_PATH", "MAX_MINUTES", "Link", "open_link", "transparency_link"]

LINK_PATH = "/me/link/"
KIND = "pacte.console/transparency-link"
MAX_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class Link:
    principal: Principal
    customer_id: str
    expires: datetime


def transparency_link(rt: Pacte, session: Session, customer_id: str, *,
                      minutes: int = 15) -> str:
    """The path of a link to this customer's transparency page, valid `minutes`.

    `session` is the app's, under `self_service`: the session refuses (PolicyDenied,
    audited) any other purpose or role, or a customer it cannot see, and records the
    grant of the link.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) \
            or not 1 <= minutes <= MAX_MINUTES:
        raise InputError(f"a link lasts 1 to {MAX_MINUTES} minutes")
    session.transparency_link(customer_id)
    token = Sealer.for_runtime(rt).seal(
        KIND, {"p": session.principal.id, "c": customer_id},
        expires=rt.now() + timedelta(minutes=minutes))
    return LINK_PATH + token


def open_link(rt: Pacte, sealer: Sealer, token: str) -> Link:
    """Who the link was made by and for; LinkRefused if altered, expired or its app is
    gone or revoked."""
    payload = sealer.open(KIND, token, now=rt.now())
    principal_id, customer_id = payload.get("p"), payload.get("c")
    if not isinstance(principal_id, str) or not isinstance(customer_id, str):
        raise LinkRefused("this link or session is not valid")
    principal = rt.principal(principal_id)
    if principal is None or principal.revoked:
        raise LinkRefused("this link is no longer valid")
    return Link(principal, customer_id, from_micros(payload["exp"]))
