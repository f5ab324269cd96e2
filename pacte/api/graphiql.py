"""GraphiQL for `pacte serve --dev`, from files pacte serves itself.

Strawberry's page loads React and GraphiQL from a public CDN, so offline (as many
privacy-sensitive deployments run) it never gets past "Loading...". The same builds
are vendored under `static/graphiql` (versions, hashes and licences in its README) and
served here with a Content-Security-Policy that lets the page reach nothing but this
server: no script, style, font or request goes elsewhere, even if a vendored file
tried to.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

__all__ = ["CSP", "STATIC_PREFIX", "graphiql_page", "graphiql_static"]

STATIC_PREFIX = "/graphiql/static/"
# GraphiQL's CSS embeds its fonts as data: URIs, and its editors set style attributes.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Only these files are served: a name outside the list is a 404, never a path lookup.
_FILES = frozenset({"graphiql.min.js", "graphiql.min.css", "react.production.min.js",
                    "react-dom.production.min.js", "start.js", "page.css"})
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files("pacte.api").joinpath(
            "static", "graphiql", name).read_bytes()
    return data


def graphiql_page() -> Response:
    return HTMLResponse(_read("index.html"), headers={**_HEADERS, "Cache-Control": "no-store"})


async def graphiql_static(request: Request) -> Response:
    name = str(request.path_params.get("name", ""))
    if name not in _FILES:
        return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
    media = _TYPES[name[name.rindex("."):]]
    # Pinned versions: a file's content changes only with pacte itself.
    return Response(_read(name), media_type=media,
                    headers={**_HEADERS, "Cache-Control": "public, max-age=86400"})
