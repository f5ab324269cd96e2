"""How errors leave the API: a message and a stable code in `extensions`, never a trace.

Codes, with the HTTP status each one gives a response that answered nothing:

    BAD_REQUEST            the HTTP request is not a GraphQL request we accept (400;
                           405, 413 or 415 where HTTP has a more precise status)
    GRAPHQL_PARSE_FAILED   the query is not valid GraphQL syntax (400)
    GRAPHQL_VALIDATION_FAILED  the query does not fit the schema (400)
    QUERY_TOO_COMPLEX      too deep, too many aliases or fields, too many tokens (400)
    QUERY_TOO_COSTLY       too many fields to resolve, counting each once per item of the
                           pages around it (`Limits.max_cost`; 400)
    BAD_INPUT              a malformed argument or variable (400)
    PURPOSE_REQUIRED       no X-Purpose header (400)
    UNKNOWN_PURPOSE        X-Purpose names no purpose of the policy (400)
    UNAUTHENTICATED        no API key, or an unknown or revoked one (401)
    PURPOSE_NOT_GRANTED    a purpose this key may not claim, or one the operation is not
                           for (403)
    FORBIDDEN              the caller's role may not do this (403)
    PRIVACY_BUDGET_SPENT   a differentially private release over the budget (403)
    NOT_FOUND              no such record visible under the purpose (404)
    CONFLICT               the write clashes with what is stored, e.g. an email taken (409)
    INTERNAL               anything else; the message is masked (500)
    AUDIT_FAILED           the audit trail could not record the request; no data (503)
    UNAVAILABLE            a store or the audit trail failed during admission (503)

One rule for the status (`http_status`): a response that answered something (some
top-level field has data) is 200, its errors beside the data, as GraphQL over HTTP
has it; a response that answered nothing takes the status of its first error's code.

A resolver failing with anything but a client error (`CLIENT_CODES`) fails the whole
response: its audit records may be lost with it, so no data is returned (G6).

PacteError messages are written to hold no personal value, so they are passed on;
any other exception is masked, and logged without its message (which could hold one).
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
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
    "http_status",
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
                          "UNKNOWN_PURPOSE", "FORBIDDEN", "NOT_FOUND", "BAD_INPUT"})
HTTP_STATUS = {
    BAD_REQUEST: 400, PARSE_FAILED: 400, VALIDATION_FAILED: 400, "QUERY_TOO_COMPLEX": 400,
    "QUERY_TOO_COSTLY": 400, BAD_INPUT: 400, "PURPOSE_REQUIRED": 400, "UNKNOWN_PURPOSE": 400,
    "UNAUTHENTICATED": 401, "PURPOSE_NOT_GRANTED": 403, "FORBIDDEN": 403,
    "PRIVACY_BUDGET_SPENT": 403, "NOT_FOUND": 404, "CONFLICT": 409, AUDIT_FAILED: 503,
    UNAVAILABLE: 503,
}
INTERNAL = "INTERNAL"
MASKED_MESSAGE = "internal error"


def http_status(body: Mapping[str, Any]) -> int:
    """The status of a GraphQL response body, by the one rule above."""
    errors = body.get("errors") or []
    data = body.get("data")
    if not errors or (isinstance(data, Mapping) and any(v is not None for v in data.values())):
        return 200
    code = (errors[0].get("extensions") or {}).get("code")
    return HTTP_STATUS.get(code, 500) if isinstance(code, str) else 500


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


# graphql-core quotes the value it could not coerce to an enum; a caller may have put a
# personal value there (an email in `channel`), and errors never echo one.
_ENUM_VALUE = re.compile(r"Value '.*' does not exist in '(\w+)' enum\..*"
                         r"|Enum '(\w+)' cannot represent non-string value: .*", re.S)


def _without_values(message: str) -> str:
    return _ENUM_VALUE.sub(lambda m: f"not a value of the enum {m[1] or m[2]}", message)


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
        # and the caller's own variables alone (an enum's refused value left out).
        message = _without_values(error.message)
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
