"""How errors leave the API: a message and a stable code in `extensions`, never a trace.

Codes:

    UNAUTHENTICATED        no API key, or an unknown or revoked one (HTTP 401)
    PURPOSE_REQUIRED       no X-Purpose header (HTTP 400)
    PURPOSE_NOT_GRANTED    unknown purpose, or one this key may not claim (HTTP 403)
    FORBIDDEN              the caller's role may not do this
    NOT_FOUND              no such record visible under the purpose
    BAD_INPUT              a malformed argument or variable
    BAD_REQUEST            the HTTP request is not a GraphQL request we accept (HTTP 4xx)
    GRAPHQL_PARSE_FAILED   the query is not valid GraphQL syntax (HTTP 400)
    GRAPHQL_VALIDATION_FAILED  the query does not fit the schema (HTTP 400)
    QUERY_TOO_COMPLEX      too deep, too many aliases or fields, too many tokens (HTTP 400)
    QUERY_TOO_COSTLY       too many fields to resolve, counting each once per item of the
                           pages around it (`Limits.max_cost`; HTTP 400)
    AUDIT_FAILED           the audit trail could not record the request; no data (HTTP 503)
    UNAVAILABLE            a store or the audit trail failed during admission (HTTP 503)
    INTERNAL               anything else; the message is masked

A resolver failing with anything but a client error (the first six codes) fails the
whole response: its audit records may be lost with it, so no data is returned (G6).

PacteError messages are written to hold no personal value, so they are passed on;
any other exception is masked, and logged without its message (which could hold one).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from pacte.errors import PacteError

__all__ = [
    "AUDIT_FAILED",
    "BAD_INPUT",
    "BAD_REQUEST",
    "INTERNAL",
    "UNAVAILABLE",
    "error_body",
    "format_error",
    "log_unexpected",
    "server_failure",
]

log = logging.getLogger("pacte.api")

BAD_INPUT = "BAD_INPUT"
BAD_REQUEST = "BAD_REQUEST"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
AUDIT_FAILED = "AUDIT_FAILED"
UNAVAILABLE = "UNAVAILABLE"
CLIENT_CODES = frozenset({"UNAUTHENTICATED", "PURPOSE_REQUIRED", "PURPOSE_NOT_GRANTED",
                          "FORBIDDEN", "NOT_FOUND", "BAD_INPUT"})
INTERNAL = "INTERNAL"
MASKED_MESSAGE = "internal error"


def error_body(message: str, code: str) -> dict[str, Any]:
    """A GraphQL response body holding one request-level error."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def log_unexpected(exc: BaseException, *, request_id: str | None, where: str) -> None:
    """Log where an unexpected error happened, without its message or local values."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unexpected %s in %s (request %s)\n%s", type(exc).__name__, where, request_id,
              frames)


def server_failure(error: GraphQLError) -> BaseException | None:
    """The exception behind an execution error that is not the caller's doing, if any."""
    original = error.original_error
    if error.path is None or original is None:
        return None
    if isinstance(original, PacteError) and original.code in CLIENT_CODES:
        return None
    return original


def _code_of(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) else None


def format_error(error: GraphQLError, *, request_id: str | None = None) -> dict[str, Any]:
    """One error of a GraphQL result as sent to the client."""
    original = error.original_error
    if isinstance(original, PacteError):
        message, code = str(original), original.code
    elif isinstance(error, GraphQLSyntaxError):
        message, code = error.message, PARSE_FAILED
    elif error.path is None:
        # Before execution nothing has been read: the message derives from the query
        # and the caller's own variables alone.
        message = error.message
        code = _code_of(error) or (BAD_INPUT if original is not None else VALIDATION_FAILED)
    elif original is None:
        # graphql-core's own execution errors (e.g. a null in a non-null field) name
        # fields, never values.
        message, code = error.message, _code_of(error) or INTERNAL
    else:
        log_unexpected(original, request_id=request_id, where="resolver")
        message, code = MASKED_MESSAGE, INTERNAL
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path is not None:
        out["path"] = list(error.path)
    out["extensions"] = {"code": code}
    return out
