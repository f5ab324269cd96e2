"""The auditor console at /console: sign-in, the trail's state, searches, reports.

An auditor signs in with their API key; the cookie then holds their principal id,
sealed and dated (never the key), and every request opens a session for that
principal under `legal`, so a revoked key is signed out at its next click. Searches
and reports are POSTed forms: an email typed in a search goes in a request body,
never in a URL or a log; it is resolved through the blind index once, and the
results page goes on with the customer's pseudonymous id.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pacte.console.documents import access_report_html
from pacte.console.guard import (
    DOCUMENT_CSP,
    HEADERS,
    clear_cookie,
    client_address,
    read_form,
    set_cookie,
)
from pacte.console.pages import Pages, static_css
from pacte.errors import InputError, LinkRefused, PacteError, PolicyDenied, TooManyAttempts
from pacte.graph.principals import Principal
from pacte.graph.session import Session

__all__ = ["auditor_routes"]

COOKIE = "pacte_console"
KIND = "pacte.console/auditor"
SIGNED_IN = timedelta(hours=8)
PURPOSE = "legal"
PAGE = 50
OUTCOMES = ("ok", "denied", "not_found", "bad_input", "failed", "invalid", "started",
            "resumed", "scrub_pending")
_FILTERS = ("principal", "purpose", "action", "outcome", "since", "until")


def _day(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise InputError(f"{what} must be a day (YYYY-MM-DD)") from None



_Handler = Callable[[Any, Request, Principal, dict[str, str]], Awaitable[Response]]


def _signed_in_only(handler: _Handler) -> Callable[[Any, Request], Awaitable[Response]]:
    """A console page for a signed-in auditor: the handler gets the principal and the
    form (CSRF checked); anyone else gets the sign-in page (see `_signed_in`)."""
    async def page(self: Any, request: Request) -> Response:
        got = await self._signed_in(request)
        if isinstance(got, Response):
            return got
        return await handler(self, request, *got)
    page.__name__ = handler.__name__
    page.__doc__ = handler.__doc__
    return page

class Auditor:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    # -- who is signed in -------------------------------------------------------

    def _principal(self, request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        try:
            payload = self.p.sealer.open(KIND, token, now=self.p.rt.now())
        except LinkRefused:
            return None
        found = self.p.rt.principal(str(payload.get("p")))
        return None if found is None or found.revoked else found

    def _session(self, principal: Principal) -> Session:
        return self.p.rt.session(principal, PURPOSE)

    async def _signed_in(self, request: Request) -> tuple[Principal, dict[str, str]] | Response:
        """The principal and the form (POST: CSRF checked), or the response to send."""
        form: dict[str, str] = {}
        if request.method == "POST":
            checked = await self._checked_form(request)
            if isinstance(checked, Response):
                return checked
            form = checked
        principal = await self.p.call(self._principal, request)
        if principal is None:
            return self._sign_in_page(request, status=401 if request.method == "POST" else 200)
        return principal, form

    async def _checked_form(self, request: Request) -> dict[str, str] | Response:
        """A POSTed form whose CSRF token checks, or the sign-in page saying why not."""
        try:
            form = await read_form(request)
        except InputError as exc:
            return self._sign_in_page(request, error=str(exc), status=400)
        if not self.p.csrf.check(request, form):
            return self._sign_in_page(request, status=403,
                                      error="The form expired; please try again.")
        return form

    def _sign_in_page(self, request: Request, *, error: str | None = None,
                      status: int = 200) -> Response:
        response = self.p.render(request, "sign_in.html", error=error, status=status)
        if request.cookies.get(COOKIE):
            clear_cookie(response, request, COOKIE)
        return response

    def _page(self, request: Request, template: str, principal: Principal, *,
              status: int = 200, **values: Any) -> Response:
        return self.p.render(request, template, who=principal.name, status=status, **values)

    # -- sign in and out ---------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        form = await self._checked_form(request)
        if isinstance(form, Response):
            return form
        address = client_address(request)
        try:
            self.p.limiter.check(address)
            principal = await self.p.call(self._authenticate, form.get("key", ""))
        except TooManyAttempts as exc:
            return self._sign_in_page(request, error=str(exc), status=429)
        except PolicyDenied:
            self.p.limiter.failed(address)
            return self._sign_in_page(
                request, status=401,
                error="This key cannot open the audit console (an auditor's key that may "
                      "claim the purpose legal is needed).")
        response = self.p.redirect("/console")
        token = self.p.sealer.seal(KIND, {"p": principal.id},
                                   expires=self.p.rt.now() + SIGNED_IN)
        set_cookie(response, request, COOKIE, token, max_age=int(SIGNED_IN.total_seconds()))
        return response

    def _authenticate(self, key: str) -> Principal:
        principal = self.p.rt.authenticate(key or None)
        # Opening the session checks (and records) that it may claim `legal`; the
        # role check is the trail's own (an app key with `legal` cannot read it).
        session = self._session(principal)
        if principal.role not in ("auditor", "admin"):
            session.audit_trail(first=0)  # refused and audited as the session does
        return principal

    @_signed_in_only
    async def sign_out(self, request: Request, _principal: Principal,
            _form: dict[str, str]) -> Response:
        response = self.p.redirect("/console")
        clear_cookie(response, request, COOKIE)
        return response

    # -- the trail ------------------------------------------------------------------

    @_signed_in_only
    async def home(self, request: Request, principal: Principal,
            _form: dict[str, str]) -> Response:
        return self._page(request, "trail.html", principal, job=self.p.jobs.latest)

    @_signed_in_only
    async def verify(self, request: Request, principal: Principal,
            _form: dict[str, str]) -> Response:
        self.p.jobs.start(principal)
        return self.p.redirect("/console")

    # -- search -----------------------------------------------------------------------

    def _resolve(self, session: Session, text: str) -> tuple[str | None, list[str]]:
        """A customer id from an id or an email: (id, []) or (None, candidates)."""
        if "@" not in text:
            return text, []
        found = session.audit_lookup(text)
        if len(found) == 1:
            return found[0], []
        if not found:
            raise InputError("no customer has this email")
        return None, found

    def _search(self, principal: Principal, form: dict[str, str]) -> dict[str, Any]:
        session = self._session(principal)
        values: dict[str, Any] = {"form": {k: form.get(k) or None for k in _FILTERS},
                                  "candidates": [], "entries": [], "searched": True,
                                  "has_next": False}
        customer_id: str | None = None
        if form.get("customer"):
            customer_id, values["candidates"] = self._resolve(session, form["customer"])
            if customer_id is None:
                values["searched"] = False
                return values
        values["form"]["customer_id"] = customer_id
        after_text = form.get("after", "")
        if after_text and not after_text.isdigit():
            raise InputError("the page cursor is not valid")
        until = _day(form.get("until", ""), "to")
        entries = session.audit_trail(
            customer_id=customer_id, first=PAGE + 1,
            after=int(after_text) if after_text else None,
            principal=form.get("principal") or None, purpose=form.get("purpose") or None,
            action=form.get("action") or None, outcome=form.get("outcome") or None,
            since=_day(form.get("since", ""), "from"),
            until=until + timedelta(days=1) if until else None)
        values["entries"], values["has_next"] = entries[:PAGE], len(entries) > PAGE
        return values

    @_signed_in_only
    async def search(self, request: Request, principal: Principal,
            form: dict[str, str]) -> Response:
        common: dict[str, Any] = {"purposes": sorted(self.p.rt.purpose_ids),
                                  "outcomes": OUTCOMES}
        if request.method == "GET":
            return self._page(request, "search.html", principal, form={}, candidates=[],
                              searched=False, entries=[], has_next=False, **common)
        try:
            values = await self.p.call(self._search, principal, form)
        except PacteError as exc:
            return self._page(request, "search.html", principal, status=_status(exc),
                              error=str(exc), form={k: form.get(k) for k in _FILTERS},
                              candidates=[], searched=False, entries=[], has_next=False,
                              **common)
        return self._page(request, "search.html", principal, **values, **common)

    # -- reports ------------------------------------------------------------------------

    def _report(self, principal: Principal, text: str) -> dict[str, Any]:
        session = self._session(principal)
        customer_id, candidates = self._resolve(session, text)
        if customer_id is None:
            return {"candidates": candidates, "report": None, "customer_id": None}
        report = session.access_report(customer_id)
        values: dict[str, Any] = {"candidates": [], "report": report,
                                  "customer_id": customer_id, "fingerprint": "",
                                  "proven": ""}
        if report.get("checkpoint"):
            from pacte.audit import check_report

            checked = check_report(report, public_key=self.p.rt.signing_public_key)
            values["fingerprint"] = checked["key_fingerprint"]
            values["proven"] = (f"checked here: its {checked['uses']} signed uses are on "
                                "record and none is left out.")
        return values

    @_signed_in_only
    async def report(self, request: Request, principal: Principal,
            form: dict[str, str]) -> Response:
        if request.method == "GET" or not form.get("customer"):
            return self._page(request, "report.html", principal, report=None,
                              candidates=[], customer_id=None)
        try:
            values = await self.p.call(self._report, principal, form["customer"])
        except PacteError as exc:
            return self._page(request, "report.html", principal, status=_status(exc),
                              error=str(exc), report=None, candidates=[], customer_id=None)
        return self._page(request, "report.html", principal, **values)

    async def report_json(self, request: Request) -> Response:
        return await self._report_file(request, html=False)

    async def report_html(self, request: Request) -> Response:
        return await self._report_file(request, html=True)

    async def _report_file(self, request: Request, *, html: bool) -> Response:
        got = await self._signed_in(request)
        if isinstance(got, Response):
            return got
        principal, form = got

        def build() -> dict[str, Any]:
            session = self._session(principal)
            customer_id, _ = self._resolve(session, form.get("customer", ""))
            if customer_id is None:
                raise InputError("choose one customer")
            return session.access_report(customer_id)

        try:
            report = await self.p.call(build)
        except PacteError as exc:
            return self._page(request, "report.html", principal, status=_status(exc),
                              error=str(exc), report=None, candidates=[], customer_id=None)
        if html:
            # A standalone document (its own styles, no script): printed or sent as is.
            page = access_report_html(report, controller=self.p.rt.controller)
            return HTMLResponse(page, headers={**HEADERS, "Content-Security-Policy":
                                               DOCUMENT_CSP})
        body = json.dumps(report, indent=2, ensure_ascii=False).encode("utf-8")
        return self.p.download(body, filename="access-report.json")

    # -- erasure receipts ---------------------------------------------------------------

    def _check_receipt(self, principal: Principal, text: str) -> list[tuple[bool, str]]:
        from pacte.audit.receipts import verify_receipt

        try:
            receipt = json.loads(text)
        except ValueError:
            raise InputError("the receipt is not JSON") from None
        if not isinstance(receipt, dict):
            raise InputError("the receipt is not a JSON object")
        signed = verify_receipt(receipt, public_key=self.p.rt.signing_public_key)
        checks = [(signed, "signed by this server's signing key" if signed else
                   "not signed by this server's current signing key (altered, or signed "
                   "before a key rotation)")]
        seq, subject = receipt.get("audit_seq"), receipt.get("subject")
        on_record = isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 \
            and erasure_on_record(self._session(principal), seq, subject)
        checks.append((on_record, f"the trail recorded this erasure at entry {seq}"
                       if on_record else "no erasure of this subject is on record at the "
                       "entry the receipt cites"))
        return checks

    @_signed_in_only
    async def receipt(self, request: Request, principal: Principal,
            form: dict[str, str]) -> Response:
        if request.method == "GET":
            return self._page(request, "receipt.html", principal, checks=[], given=None)
        try:
            checks = await self.p.call(self._check_receipt, principal,
                                       form.get("receipt", ""))
        except PacteError as exc:
            return self._page(request, "receipt.html", principal, status=_status(exc),
                              error=str(exc), checks=[], given=form.get("receipt"))
        return self._page(request, "receipt.html", principal, checks=checks,
                          given=form.get("receipt"))

    @_signed_in_only
    async def record(self, request: Request, principal: Principal,
            _form: dict[str, str]) -> Response:
        try:
            record = await self.p.call(lambda: self._session(principal).record_of_processing())
        except PacteError as exc:
            return self._page(request, "trail.html", principal, status=_status(exc),
                              error=str(exc), job=self.p.jobs.latest)
        return self._page(request, "record.html", principal, record=record)


def _status(exc: PacteError) -> int:
    if isinstance(exc, InputError):
        return 400
    return 403 if isinstance(exc, PolicyDenied) else 503


async def _css(request: Request) -> Response:
    return Response(static_css(), media_type="text/css; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


def auditor_routes(pages: Pages) -> list[Route]:
    a = Auditor(pages)
    return [
        Route("/console", a.home, methods=["GET"]),
        Route("/console/sign-in", a.sign_in, methods=["POST"]),
        Route("/console/sign-out", a.sign_out, methods=["POST"]),
        Route("/console/verify", a.verify, methods=["POST"]),
        Route("/console/search", a.search, methods=["GET", "POST"]),
        Route("/console/report", a.report, methods=["GET", "POST"]),
        Route("/console/report.json", a.report_json, methods=["POST"]),
        Route("/console/report.html", a.report_html, methods=["POST"]),
        Route("/console/record", a.record, methods=["GET"]),
        Route("/console/receipt", a.receipt, methods=["GET", "POST"]),
        Route("/console/static/console.css", _css, methods=["GET"]),
    ]


def erasure_on_record(session: Session, seq: int, subject: object) -> bool:
    """Whether audit entry `seq` records the erasure of `subject`.

    Entry `seq` comes after entry `seq - 1` in the trail's order; on a trail shared by
    many servers that order is by time across every server's chain, so other servers'
    erasures may come between: read on to entry `seq` itself, and stop at the first
    entry past it (a seq above it, on the same chain: `seq // 65536`, see
    pacte.audit.shared_trail)."""
    after = seq - 1
    while page := session.audit_trail(first=50, after=after, action="customer.erase"):
        for entry in page:
            if entry.seq == seq:
                return subject in (entry.record.get("subjects") or [])
            if entry.seq > seq and entry.seq // 65536 == seq // 65536:
                return False
        after = page[-1].seq
    return False
