"""The HTTP face of pacte: `POST /graphql`, `GET /healthz`, as an ASGI app.

One request runs in this order, each step refusing with a GraphQL-shaped error and
a code in `extensions` (see pacte.api.errors):

1. size (413), method and content type (405, 415), JSON shape (400; batches refused);
2. authentication from `Authorization: Bearer <key>` (401; failures are audited);
3. purpose admission from `X-Purpose` (400 / 403; refusals are audited);
4. parse, limits, validation (400) and execution, with audit records deferred;
5. `session.flush()`: the request's audit records are appended. If that fails the
   response is an error (503) and carries no data (G6, fail closed).

Steps 2 to 5 run in a worker thread (pacte.api.hop), one request per thread at a
time, so a slow request never holds the event loop: `/healthz` and the reading of
other requests go on meanwhile. The request's session and loaders are made and used
on that thread only (execution runs on that thread, on an event loop of its own when a
resolver is asynchronous); the stores, the key vault and the audit trail are shared
between threads behind their own locks.

Without CORS to answer, `/graphql` is an ASGI app of its own (`GraphQLEndpoint.asgi`):
it reads the few headers it needs in one pass over the request's, the body straight
from `receive`, and answers with `JSONAnswer` (pacte.api.json_response), where
starlette's request, header and response objects cost about a fifth of a
`{ __typename }` request. Behind CORS, starlette's route serves the same `respond`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from pacte.api.context import Context, LinkMaker
from pacte.api.errors import (
    AUDIT_FAILED,
    BAD_INPUT,
    BAD_REQUEST,
    HTTP_STATUS,
    INTERNAL,
    UNAVAILABLE,
    error_body,
    format_error,
    http_status,
    log_unexpected,
    server_failure,
)
from pacte.api.graphiql import STATIC_PREFIX, graphiql_page, graphiql_static
from pacte.api.hop import WorkerThreads
from pacte.api.json_response import JSONAnswer
from pacte.api.limits import Limits
from pacte.api.metrics import MetricsMiddleware
from pacte.api.operation import Outcome, direct_execution
from pacte.api.schema import build_schema
from pacte.errors import PacteError, PolicyDenied, StorageError

if TYPE_CHECKING:
    import strawberry

    from pacte.graph.session import Session
    from pacte.runtime import Pacte

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024
WORKER_THREADS = 40
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_ORJSON_MAX_BRACKETS = 256
_JSON_TYPES = ("application/json", "application/graphql-response+json")
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# The same, as the header lines of a response (see `_respond`).
_HEAD = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _HEADERS.items())
# The request headers the endpoint reads, by their name in an ASGI scope (lower case).
_READ = {name.encode("latin-1"): name for name in (
    "accept", "authorization", "content-length", "content-type", "x-purpose", "x-request-id")}

# What the endpoint answers with: a `JSONAnswer`, or a starlette response (GraphiQL).
Answer = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Refused(Exception):
    """A request refused before execution: HTTP status, message and code."""

    def __init__(self, status: int, message: str, code: str = BAD_REQUEST,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})


def _respond(body: dict[str, Any], status: int, request_id: str,
             headers: Mapping[str, str] | None = None) -> JSONAnswer:
    """The JSON answer, with the header lines `JSONResponse` would write for
    `{**_HEADERS, "X-Request-Id": request_id, **headers}`."""
    if headers:
        lines = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in
                 {**_HEADERS, "X-Request-Id": request_id, **headers}.items()]
    else:
        lines = [*_HEAD, (b"x-request-id", request_id.encode("latin-1"))]
    return JSONAnswer(body, status_code=status, headers=lines)


class _Incoming:
    """What the endpoint reads of an HTTP request: its method, the headers it uses (the
    first of each name, as starlette's `Headers.get` gives it), the query string and
    the body's `receive`."""

    __slots__ = ("headers", "method", "query_string", "receive")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = _READ.get(name)
            if key is not None and key not in headers:
                headers[key] = value.decode("latin-1")
        self.headers = headers
        self.method: str = scope["method"]
        self.query_string: bytes = scope.get("query_string", b"")
        self.receive = receive

    @property
    def query_params(self) -> QueryParams:
        return QueryParams(self.query_string)


def _request_id(headers: Mapping[str, str]) -> str:
    given = headers.get("x-request-id", "")
    # 32 random hex digits, as uuid4().hex gave, at a quarter of its cost.
    return given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(16)


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


async def _read_body(incoming: _Incoming, limit: int) -> bytes:
    """The body, read as starlette's `Request.stream` reads it."""
    declared = incoming.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise _Refused(400, "malformed Content-Length")
    if declared is not None and int(declared) > limit:
        raise _Refused(413, f"the request body is larger than {limit} bytes")
    body = bytearray()
    while True:
        message = await incoming.receive()
        if message["type"] == "http.request":
            body.extend(message.get("body", b""))
            if len(body) > limit:
                raise _Refused(413, f"the request body is larger than {limit} bytes")
            if not message.get("more_body", False):
                return bytes(body)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _decode(raw: str | bytes, what: str) -> tuple[object, bool]:
    """The JSON value, and whether all its text is known to be valid Unicode.

    orjson where it reads JSON as the standard parser does (several times faster on a
    request body; it refuses lone surrogates, so what it returns is valid Unicode).
    It does not where a body nests deeply (the standard parser gives up at Python's
    recursion limit, orjson at 1,024 levels) or holds a number of 19 digits or more
    (an integer beyond 64 bits is a float to orjson): such bodies, and whatever
    orjson refuses (a lone surrogate, NaN, bytes that are not UTF-8), go to the
    standard parser, which decides as it always did.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") < _ORJSON_MAX_BRACKETS \
            and _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data), True
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw), False
    except (ValueError, RecursionError) as exc:
        raise _Refused(400, f"{what} is not valid JSON") from exc


def _is_unicode(*values: object) -> bool:
    try:
        json.dumps(values, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _GraphQLRequest:
    """The three parameters of a GraphQL request, checked for type."""

    def __init__(self, params: Mapping[str, object], *, unicode: bool = False) -> None:
        query, variables, name = (params.get("query"), params.get("variables"),
                                  params.get("operationName"))
        if not isinstance(query, str) or not query.strip():
            raise _Refused(400, "the request needs a `query` string")
        if variables is not None and not isinstance(variables, dict):
            raise _Refused(400, "`variables` must be a JSON object")
        if name is not None and not isinstance(name, str):
            raise _Refused(400, "`operationName` must be a string")
        if not unicode and not _is_unicode(query, variables, name):
            # JSON may escape a lone surrogate (\ud800), which no store, index or audit
            # entry can encode: refused here, whatever argument it is in.
            raise _Refused(400, "the request holds text that is not valid Unicode "
                                "(a lone surrogate)", BAD_INPUT)
        self.query: str = query
        self.variables: dict[str, Any] | None = variables
        self.operation_name: str | None = name


class GraphQLEndpoint:
    """`/graphql`: admission, execution, audit flush, response."""

    def __init__(self, pacte: Pacte, schema: strawberry.Schema, *, dev: bool,
                 max_body: int, links: bool = True) -> None:
        self._pacte = pacte
        self._schema = schema
        # pacte's own schema runs without strawberry's per-request wrapper (its steps
        # taken directly, pacte.api.operation); any other through `Schema.execute`.
        self._direct = direct_execution(schema)
        self._dev = dev
        self._max_body = max_body
        # As many as anyio's default thread limit, which served requests before.
        self._workers = WorkerThreads(limit=WORKER_THREADS, name="pacte-graphql")
        # Transparency links only where their page (/me, the console) is served.
        self._links = _link_maker(pacte) if links else None

    async def respond(self, incoming: _Incoming) -> Answer:
        """A request's answer: step 1 here, steps 2 to 5 on a worker thread."""
        headers = incoming.headers
        request_id = _request_id(headers)
        try:
            if incoming.method not in ("GET", "POST"):
                raise _Refused(405, "use POST (or GET for queries)", headers={"Allow": "GET, POST"})
            if incoming.method == "GET" and self._dev and "query" not in incoming.query_params \
                    and "text/html" in headers.get("accept", ""):
                return graphiql_page()
            gql, allowed = await self._parse(incoming)
        except _Refused as exc:
            return _respond(error_body(str(exc), exc.code), exc.status, request_id, exc.headers)
        # In a copy of this context, as starlette's `run_in_threadpool` runs a call, on
        # the endpoint's own threads (pacte.api.hop).
        return await self._workers.run(functools.partial(
            copy_context().run, self._admit_and_execute, gql, allowed, _bearer(headers),
            headers.get("x-purpose") or None, request_id))

    async def handle(self, request: Request) -> Answer:
        """`/graphql` as starlette's route serves it (behind CORS)."""
        return await self.respond(_Incoming(request.scope, request.receive))

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`/graphql` as an ASGI app of its own, without starlette's router and its two
        exception middlewares: they cost about as much CPU as a `{ __typename }` request's
        execution. What they would have done for an error is done here."""
        incoming = _Incoming(scope, receive)
        try:
            answer = await self.respond(incoming)
        except Exception as exc:
            request_id = _request_id(incoming.headers)
            log_unexpected(exc, request_id=request_id, where="endpoint")
            answer = _respond(error_body("internal error", INTERNAL), 500, request_id)
        await answer(scope, receive, send)

    def _admit_and_execute(self, gql: _GraphQLRequest, allowed: tuple[OperationType, ...],
                           key: str | None, purpose: str | None, request_id: str
                           ) -> JSONAnswer:
        """Steps 2 to 5, on a worker thread."""
        try:
            principal = self._pacte.authenticate(key, request_id=request_id)
            session = self._pacte.session(principal, purpose, request_id=request_id,
                                          defer_audit=True)
        except PolicyDenied as exc:
            status = HTTP_STATUS.get(exc.code, 403)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return _respond(error_body(str(exc), exc.code), status, request_id, headers)
        except Exception as exc:
            # The key lookup, or the audit append recording a refusal, failed.
            log_unexpected(exc, request_id=request_id, where="admission")
            return _respond(error_body("the service cannot admit requests right now",
                                       UNAVAILABLE), 503, request_id)
        return self._execute(gql, allowed, session, Context.create(session, links=self._links),
                             request_id)

    async def _parse(self, incoming: _Incoming
                     ) -> tuple[_GraphQLRequest, tuple[OperationType, ...]]:
        if incoming.method == "GET":
            params = incoming.query_params
            variables = params.get("variables")
            return _GraphQLRequest({
                "query": params.get("query"),
                "variables": _decode(variables, "`variables`")[0] if variables else None,
                "operationName": params.get("operationName"),
            }), (OperationType.QUERY,)
        media = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in _JSON_TYPES:
            raise _Refused(415, "send the request as application/json")
        payload, unicode = _decode(await _read_body(incoming, self._max_body),
                                   "the request body")
        if isinstance(payload, list):
            raise _Refused(400, "batched requests are not supported; send one operation")
        if not isinstance(payload, dict):
            raise _Refused(400, "the request body must be a JSON object")
        return _GraphQLRequest(payload, unicode=unicode), (OperationType.QUERY,
                                                            OperationType.MUTATION)

    def _execute(self, gql: _GraphQLRequest, allowed: tuple[OperationType, ...],
                 session: Session, context: Context, request_id: str) -> JSONAnswer:
        status, body, headers, failure = self._run(gql, allowed, session, context, request_id)
        try:
            session.flush()
        except Exception as exc:
            # Fail closed: whatever was read is not sent if its use is not on record.
            log_unexpected(exc, request_id=request_id, where="audit flush")
            return _respond(error_body(
                "the audit trail could not record this request; nothing was returned",
                AUDIT_FAILED), 503, request_id)
        if failure is not None:
            # A resolver failed on our side: the records of its siblings may have gone
            # with it (a refusal flushes them), so nothing read is sent (G6).
            code = failure.code if isinstance(failure, PacteError) else INTERNAL
            return _respond(error_body("the request failed on the server; nothing was "
                                       "returned", code),
                            503 if isinstance(failure, StorageError) else 500, request_id)
        return _respond(body, status, request_id, headers)

    def _run(self, gql: _GraphQLRequest, allowed: tuple[OperationType, ...],
             session: Session, context: Context, request_id: str
             ) -> tuple[int, dict[str, Any], dict[str, str], BaseException | None]:
        """Execute the operation: (status, body, headers, a failure on the server's side)."""
        try:
            # One request, one read scope: on Neo4j a customer's neighbourhood is
            # fetched in one round trip (see `customer` in schema.py).
            with session.read_scope():
                result = self._outcome(gql, allowed, context)
        except InvalidOperationTypeError:
            return 405, error_body("mutations must be sent with POST", BAD_REQUEST), \
                {"Allow": "POST"}, None
        except (CannotGetOperationTypeError, MissingQueryError) as exc:
            message = exc.as_http_error_reason() if isinstance(
                exc, CannotGetOperationTypeError) else "the request needs a `query` string"
            return 400, error_body(message, BAD_REQUEST), {}, None
        except Exception as exc:
            log_unexpected(exc, request_id=request_id, where="execution")
            return 500, error_body("internal error", INTERNAL), {}, None
        errors = result.errors or []
        failure = next((f for f in map(server_failure, errors) if f is not None), None)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = [format_error(e, request_id=request_id) for e in errors]
        if not isinstance(result, PreExecutionError):
            body["data"] = result.data
        return http_status(body), body, {}, failure


    def _outcome(self, gql: _GraphQLRequest, allowed: tuple[OperationType, ...],
                 context: Context) -> Outcome:
        if self._direct is None:
            return _thread_loop().run_until_complete(self._schema.execute(
                gql.query, variable_values=gql.variables, context_value=context,
                operation_name=gql.operation_name, allowed_operation_types=allowed))
        outcome = self._direct.execute(gql.query, variables=gql.variables, context=context,
                                       operation_name=gql.operation_name, allowed=allowed)
        if isinstance(outcome, ExecutionResult):
            return outcome  # every resolver was synchronous: no event loop needed
        return _thread_loop().run_until_complete(outcome)


_LOOPS = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This worker thread's event loop, for the async parts of execution (DataLoaders).

    One per thread, made once: a loop per request would cost more than most requests.
    """
    loop: asyncio.AbstractEventLoop | None = getattr(_LOOPS, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOOPS.loop = asyncio.new_event_loop()
    return loop


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_HEADERS)


def _link_maker(pacte: Pacte) -> LinkMaker:
    def make(session: Session, customer_id: str, minutes: int) -> str:
        from pacte.console.links import transparency_link

        return transparency_link(pacte, session, customer_id, minutes=minutes)
    return make


def create_app(pacte: Pacte, *, dev: bool = False, limits: Limits | None = None,
               max_body: int = MAX_BODY_BYTES,
               schema: strawberry.Schema | None = None,
               cors_origins: Sequence[str] = (), console: bool = True) -> ASGIApp:
    """The ASGI app serving an opened data directory.

    `dev` turns on introspection, field suggestions and a GraphiQL page at
    `GET /graphql`; never in production. `cors_origins` lists the web origins whose
    pages may call the API from a browser (preflight answered); none by default.
    `console` serves the auditors' console at `/console` and the customers'
    transparency pages at `/me` (pacte.console).
    """
    endpoint = GraphQLEndpoint(pacte, schema or build_schema(dev=dev, limits=limits),
                               dev=dev, max_body=max_body, links=console)
    middleware = [Middleware(
        CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
        allow_headers=list(CORS_HEADERS), expose_headers=["X-Request-Id"], max_age=600,
    )] if cors_origins else []
    routes = [
        Route("/graphql", endpoint.handle,
              methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    if dev:
        routes.append(Route(STATIC_PREFIX + "{name}", graphiql_static, methods=["GET"]))
    if console:
        from pacte.console import console_routes

        routes += console_routes(pacte)
    app = Starlette(routes=routes, middleware=middleware)
    # `GET /metrics` (Prometheus text): counts and latencies, no personal value. With
    # no CORS to answer, `/graphql` goes straight to its endpoint (the route above
    # answers the same, through starlette's layers).
    return MetricsMiddleware(app, pacte.metrics, purposes=pacte.purpose_ids,
                             graphql=None if cors_origins else endpoint.asgi)



# What a browser client sends: the key, the purpose, and its own request id.
CORS_HEADERS = ("Authorization", "Content-Type", "X-Purpose", "X-Request-Id")
