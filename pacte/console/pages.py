"""What the console and the transparency page share: templates, tokens, responses.

Every handler reaches data only through a `Session` (the door GraphQL uses, G10),
opened per request on a worker thread for the principal the cookie names; a page
renders what the session returned and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pacte.console.guard import CSRF_COOKIE, HEADERS, Csrf, SignInLimiter, set_cookie
from pacte.console.seal import Sealer
from pacte.console.verify_job import VerifyJobs
from pacte.runtime import Pacte

__all__ = ["Pages"]

T = TypeVar("T")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("pacte.console", "templates"),
    autoescape=True, trim_blocks=True, lstrip_blocks=True)


class Pages:
    """The state both page sets keep for one served data directory."""

    def __init__(self, rt: Pacte) -> None:
        self.rt = rt

    # Made on first use: an app that never serves a page never derives its key.
    @cached_property
    def sealer(self) -> Sealer:
        return Sealer.for_runtime(self.rt)

    @cached_property
    def csrf(self) -> Csrf:
        return Csrf(self.sealer)

    @cached_property
    def limiter(self) -> SignInLimiter:
        return SignInLimiter(now=self.rt.now)

    @cached_property
    def jobs(self) -> VerifyJobs:
        return VerifyJobs(self.rt)

    def render(self, request: Request, template: str, *, status: int = 200,
               **values: Any) -> HTMLResponse:
        token, fresh = self.csrf.token(request)
        values.setdefault("notice", None)
        values.setdefault("error", None)
        html = _TEMPLATES.get_template(template).render(csrf=token, **values)
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if fresh is not None:
            set_cookie(response, request, CSRF_COOKIE, fresh)
        return response

    @staticmethod
    def redirect(url: str) -> Response:
        # 303: the browser follows a POST with a GET, so a reload does not repost.
        return RedirectResponse(url, status_code=303, headers=HEADERS)

    @staticmethod
    def download(body: bytes, *, filename: str, media: str = "application/json") -> Response:
        return Response(body, media_type=media, headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run session work on a worker thread, as /graphql does."""
        return await run_in_threadpool(fn, *args, **kwargs)


def static_css() -> bytes:
    from importlib import resources

    return resources.files("pacte.console").joinpath("templates", "console.css").read_bytes()
