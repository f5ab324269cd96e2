"""The server's logs as JSON lines on stderr, one object per line.

Each line holds the time, the level, the logger, the message, and for requests the
method, route, status, duration and request id. What the messages are made of is
pacte's own text (the access log names a route, never a path or a query; unexpected
errors name their type and code frames, never their message: see
`pacte.api.errors.log_unexpected`), so no personal value and no key reaches a log.
An exception attached to a record from elsewhere (uvicorn) is written the same way:
its type and frames, not its message, which may quote what a client sent.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime

__all__ = ["FIELDS", "JsonLines", "configure_logging"]

# Extra attributes of a record written out, when a logger passes them (`extra=`).
FIELDS = ("method", "route", "status", "duration_ms", "request_id", "purpose")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            doc["error"] = type(exc).__name__
            doc["frames"] = "".join(traceback.format_tb(exc.__traceback__))
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(*, level: int = logging.INFO) -> None:
    """Every logger of the process (pacte's and uvicorn's) writes JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The driver's own connection chatter only when debugging.
    logging.getLogger("neo4j").setLevel(level if level == logging.DEBUG
                                        else max(level, logging.WARNING))
