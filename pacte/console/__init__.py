"""Pages for people: the auditors' console (/console) and the customers' transparency
page (/me), server-rendered with no script, served by `pacte serve` beside /graphql.

Both reach data only through the session door, as GraphQL does (G10); see
`pages` for what they share, `guard` for their safety, `links` for the links that
open a customer's page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from pacte.console.auditor import auditor_routes
from pacte.console.guard import trusted_proxies
from pacte.console.links import transparency_link
from pacte.console.pages import Pages
from pacte.console.transparency import transparency_routes

if TYPE_CHECKING:
    from pacte.runtime import Pacte

__all__ = ["ROUTES_LOGGED", "console_routes", "transparency_link"]

# The paths the access log may name (a link's path carries its token: never logged).
ROUTES_LOGGED = ("/console", "/console/sign-in", "/console/sign-out", "/console/verify",
                 "/console/search", "/console/report", "/console/report.json",
                 "/console/report.html", "/console/record", "/console/receipt",
                 "/console/static/console.css",
                 "/me", "/me/consent", "/me/export", "/me/erase")


def console_routes(rt: Pacte) -> list[Route]:
    trusted_proxies()  # a bad PACTE_TRUSTED_PROXIES fails the start, not each request
    pages = Pages(rt)
    return [*auditor_routes(pages), *transparency_routes(pages)]
