"""The customer's transparency page at /me, opened by a link an app made for them.

`/me/link/<token>` checks the sealed link, keeps it in an HttpOnly cookie and sends the
browser on to `/me` (by a page, not a redirect: a SameSite=Strict cookie set while
arriving from a mail client is sent on a same-site navigation, not on a redirect
of the cross-site one), so the token does not stay in the address bar or history.
Each request then opens a session as the app under `self_service`, for that customer
only: the page shows their uses in plain words, their consents with a button each,
an export and an erasure; everything is audited as the app's, like the same calls
over GraphQL, and a withdrawal holds from the next request on (G5).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pacte.audit import plain_words
from pacte.console.guard import clear_cookie, read_form, set_cookie
from pacte.console.links import LINK_PATH, Link, open_link
from pacte.console.pages import Pages
from pacte.errors import InputError, LinkRefused, PacteError, PolicyDenied
from pacte.graph.session import Session

__all__ = ["transparency_routes"]

COOKIE = "pacte_me"
PURPOSE = "self_service"
SOURCE = "transparency page"
PAGE = 50


class Transparency:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    def _refused(self, request: Request, exc: PacteError, *, status: int = 403) -> Response:
        response = self.p.render(
            request, "refused.html", status=status, heading="This link cannot be used",
            message=str(exc),
            hint="Ask the service you came from for a new link: links last a short time.")
        clear_cookie(response, request, COOKIE)
        return response

    async def follow(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        try:
            link = await self.p.call(open_link, self.p.rt, self.p.sealer, token)
        except LinkRefused as exc:
            return self._refused(request, exc)
        response = self.p.render(request, "follow.html")
        left = (link.expires - self.p.rt.now()).total_seconds()
        set_cookie(response, request, COOKIE, token, max_age=max(1, int(left)))
        return response

    def _link(self, request: Request) -> Link:
        token = request.cookies.get(COOKIE)
        if not token:
            raise LinkRefused("open this page from the link you were given")
        return open_link(self.p.rt, self.p.sealer, token)

    def _session(self, link: Link) -> Session:
        return self.p.rt.session(link.principal, PURPOSE)

    async def _form(self, request: Request) -> dict[str, str] | Response:
        try:
            form = await read_form(request)
        except InputError as exc:
            return self._refused(request, exc, status=400)
        if not self.p.csrf.check(request, form):
            return self._refused(request, InputError("the form expired; reload the page"),
                                 status=403)
        return form

    # -- the page -------------------------------------------------------------

    def _page_values(self, request: Request, after: int | None) -> dict[str, Any]:
        link = self._link(request)
        session = self._session(link)
        cid = link.customer_id
        entries = session.my_data_uses(cid, first=PAGE + 1, after=after)
        shown = entries[:PAGE]
        sentences = plain_words(shown)
        uses = [{"sentence": s, "time": e.time[:16].replace("T", " "),
                 "legal_basis": e.record.get("legal_basis")}
                for s, e in zip(sentences, shown, strict=True)]
        states = {c.purpose: c for c in session.consents(cid)}
        consents = []
        for p in session.purposes():
            if not p.needs_consent:
                continue
            state = states.get(p.id)
            consents.append({"id": p.id, "description": p.description,
                             "granted": state is not None and state.status == "granted",
                             "decided_by": getattr(state, "decided_by", None)})
        return {"app": link.principal.name, "uses": uses, "consents": consents,
                "next_after": shown[-1].seq if len(entries) > PAGE else None,
                "expires": link.expires.strftime("on %Y-%m-%d at %H:%M UTC")}

    async def page(self, request: Request) -> Response:
        after_text = request.query_params.get("after", "")
        after = int(after_text) if after_text.isdigit() else None
        notice = {"granted": "Your consent is recorded.",
                  "withdrawn": "Your consent is withdrawn: it holds from now on."}.get(
            request.query_params.get("done", ""))
        try:
            values = await self.p.call(self._page_values, request, after)
        except (LinkRefused, PolicyDenied) as exc:
            return self._refused(request, exc)
        except PacteError as exc:
            return self._refused(request, exc, status=400 if isinstance(
                exc, InputError) else 503)
        return self.p.render(request, "me.html", notice=notice, **values)

    async def consent(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        choice, purpose = form.get("choice"), form.get("purpose", "")

        def change() -> None:
            link = self._link(request)
            session = self._session(link)
            if choice == "grant":
                session.grant_consent(link.customer_id, purpose, source=SOURCE)
            elif choice == "withdraw":
                session.withdraw_consent(link.customer_id, purpose, source=SOURCE)
            else:
                raise InputError("choose to agree or to withdraw")

        try:
            await self.p.call(change)
        except PacteError as exc:
            return self._refused(request, exc, status=400 if isinstance(
                exc, InputError) else 403)
        return self.p.redirect("/me?done=" + ("granted" if choice == "grant" else "withdrawn"))

    async def export(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form

        def build() -> dict[str, Any]:
            link = self._link(request)
            return self._session(link).export(link.customer_id)

        try:
            data = await self.p.call(build)
        except PacteError as exc:
            return self._refused(request, exc)
        body = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
        return self.p.download(body, filename="my-data.json")

    async def erase(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        if form.get("confirm") != "yes":
            return self.p.redirect("/me")

        def erase() -> dict[str, Any]:
            link = self._link(request)
            return self._session(link).erase(link.customer_id)

        try:
            receipt = await self.p.call(erase)
        except PacteError as exc:
            return self._refused(request, exc)
        response = self.p.render(request, "erased.html",
                                 receipt=json.dumps(receipt, indent=2, sort_keys=True))
        clear_cookie(response, request, COOKIE)
        return response


def transparency_routes(pages: Pages) -> list[Route]:
    t = Transparency(pages)
    return [
        Route(LINK_PATH + "{token}", t.follow, methods=["GET"]),
        Route("/me", t.page, methods=["GET"]),
        Route("/me/consent", t.consent, methods=["POST"]),
        Route("/me/export", t.export, methods=["POST"]),
        Route("/me/erase", t.erase, methods=["POST"]),
    ]

