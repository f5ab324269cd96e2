"""`pacte serve --workers N`: N server processes on one machine, one port.

uvicorn starts the processes and shares the listening socket between them; each
process builds its app here (`app`, a factory uvicorn calls in the worker), opening
the data directory, or attaching to the Neo4j store, itself: connections, caches and
the erasure lock cannot cross a fork. What they must share they share through the
stores, which several processes already use safely: on SQLite, the write lock of each
file (the audit trail's appends queue on it; the key vault's `data_version` tells
every process of an erasure or a rotation), the `erasing.lock` file; on Neo4j, the
database. Each process closes its runtime when it stops (its final audit checkpoint).

How to open travels from the command line to the workers as JSON in an environment
variable (`CONFIG_ENV`), which holds paths and URIs, never a key: the KEK stays in
PACTE_MASTER_KEY or its key file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from pacte.console import ROUTES_LOGGED

__all__ = ["CONFIG_ENV", "app", "open_runtime"]

CONFIG_ENV = "PACTE_SERVE_WORKER"

log = logging.getLogger("pacte.workers")


def open_runtime(config: Mapping[str, Any]) -> Any:
    """The runtime a server process serves: `config` is what `pacte serve` was given."""
    from pacte.runtime import Pacte

    if config.get("attach"):
        return Pacte.attach(config["store"], policy_file=config["policy"],
                            signing_key_file=config["signing_key"],
                            master_key_file=config.get("master_key"),
                            work_dir=Path(config["data"]))
    return Pacte.open(Path(config["data"]), store_uri=config.get("store"))


def app() -> ASGIApp:
    """Build one worker's app (uvicorn `factory=True`)."""
    from pacte.api import Limits, create_app
    from pacte.api.access_log import AccessLog
    from pacte.api.logs import configure_logging

    config = json.loads(os.environ[CONFIG_ENV])
    configure_logging(level=getattr(logging, str(config.get("log_level", "info")).upper()))
    rt = open_runtime(config)
    limits = Limits() if config.get("max_cost") is None else Limits(max_cost=config["max_cost"])
    inner = AccessLog(create_app(rt, dev=bool(config.get("dev")), limits=limits,
                                 cors_origins=config.get("cors_origins") or ()),
                      routes=("/graphql", "/healthz", "/metrics", *ROUTES_LOGGED))
    return ClosingOnShutdown(inner, rt.close)


class ClosingOnShutdown:
    """Answers the ASGI lifespan itself, closing the worker's runtime on shutdown."""

    def __init__(self, app: ASGIApp, close: Callable[[], None]) -> None:
        self._app = app
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self._app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    self._close()
                except Exception as exc:
                    log.error("closing the runtime failed: %s", type(exc).__name__)
                await send({"type": "lifespan.shutdown.complete"})
                return
