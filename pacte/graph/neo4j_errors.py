"""Neo4j driver errors as pacte's: StorageError (retryable or not) or Conflict."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from neo4j.exceptions import (
    AuthError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from pacte.errors import Conflict, StorageError

__all__ = ["CONSTRAINT_FAILED", "mapped"]

CONSTRAINT_FAILED = "Neo.ClientError.Schema.ConstraintValidationFailed"


@contextlib.contextmanager
def mapped(operation: str) -> Iterator[None]:
    """Driver errors become StorageError; messages carry codes, never values.

    Neo4j's own messages can quote property values (a constraint violation names the
    duplicate), so only the status code and the error class are kept.
    """
    try:
        yield
    except StorageError:
        raise
    except (ServiceUnavailable, SessionExpired) as exc:
        raise StorageError(f"neo4j {operation} failed: server unavailable "
                           f"({type(exc).__name__})", retryable=True) from exc
    except TransientError as exc:
        raise StorageError(f"neo4j {operation} failed: {exc.code}", retryable=True) from exc
    except AuthError as exc:
        raise StorageError(f"neo4j {operation} failed: authentication refused ({exc.code})",
                           retryable=False) from exc
    except Neo4jError as exc:
        if exc.code == CONSTRAINT_FAILED:
            raise Conflict(f"neo4j {operation} refused: {exc.code}") from exc
        raise StorageError(f"neo4j {operation} failed: {exc.code}", retryable=False) from exc
    except DriverError as exc:
        raise StorageError(f"neo4j {operation} failed: {type(exc).__name__}",
                           retryable=False) from exc
