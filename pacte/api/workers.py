"""`pacte serve --workers N`: N server processes on one machine, one port.

`serve` starts the processes (uvicorn servers, each replaced if it dies) and gives
each its own listening socket on the port
(SO_REUSEPORT), so that the kernel spreads connections over the workers. With one
socket shared by all, every worker is woken by a new connection and the first to run
accepts everything that is pending: a client opening its keep-alive connections at
once (a load balancer, wrk) had them all served by one process while the others idled
(issue #18: `--workers 2` gave 1.00x the throughput of one). Where SO_REUSEPORT does
not spread connections (not Linux) the workers share one socket, as uvicorn does.

Each process builds its app here (`app`, a factory uvicorn calls in the worker), opening
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
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from pacte.console import ROUTES_LOGGED

__all__ = ["CONFIG_ENV", "app", "open_runtime", "serve"]

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
    from pacte.api.gc_pauses import freeze_startup_heap
    from pacte.api.logs import configure_logging

    config = json.loads(os.environ[CONFIG_ENV])
    configure_logging(level=getattr(logging, str(config.get("log_level", "info")).upper()))
    rt = open_runtime(config)
    limits = Limits() if config.get("max_cost") is None else Limits(max_cost=config["max_cost"])
    inner = AccessLog(create_app(rt, dev=bool(config.get("dev")), limits=limits,
                                 cors_origins=config.get("cors_origins") or ()),
                      routes=("/graphql", "/healthz", "/metrics", *ROUTES_LOGGED))
    freeze_startup_heap()
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


def serve(config: Any, *, workers: int) -> int:
    """Run `workers` processes of the uvicorn `config` until SIGINT or SIGTERM; the exit code.

    Each process gets its own SO_REUSEPORT socket, bound and listening here before any
    starts (a port in use is one error line), and keeps it for good: a process that dies
    is replaced on the same socket, since connections the kernel hashes to a socket
    nobody accepts from would wait for ever. One that fails to start stops the server:
    it would fail the same way on every restart (the app, the data directory).
    """
    from uvicorn._subprocess import get_subprocess
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.server import Server
    from uvicorn.supervisors.multiprocess import Multiprocess

    if not spreads_connections():
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    try:
        _check_free(config.host, config.port)
        sockets = [_listener(config.host, config.port, backlog=config.backlog)
                   for _ in range(workers)]
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", config.host, config.port, exc.strerror)
        return STARTUP_FAILURE

    def started(sock: socket.socket) -> Any:
        # uvicorn's own way to run a server process (spawned, the socket handed over).
        process = get_subprocess(config, target=Server(config).run, sockets=[sock])
        process.start()
        return process

    log.info("listening on http://%s:%d with %d processes", config.host, config.port, workers)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    processes = [started(sock) for sock in sockets]
    code = 0
    while not stop.wait(0.5):
        for i, process in enumerate(processes):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker process %s failed to start, stopping", process.pid)
                code = STARTUP_FAILURE
                stop.set()
                break
            log.info("worker process %s died, starting another", process.pid)
            processes[i] = started(sockets[i])
    for process in processes:
        process.terminate()  # SIGTERM: each closes its runtime (its final checkpoint)
    for process in processes:
        process.join()
    for sock in sockets:
        sock.close()
    return code


def spreads_connections() -> bool:
    """Whether sockets bound to one port with SO_REUSEPORT share its connections (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _check_free(host: str, port: int) -> None:
    """OSError if something listens on the port already. SO_REUSEPORT would otherwise
    let this server join another one of the same user on it (a second `pacte serve`
    started by mistake), sharing its connections, where a plain bind fails."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _listener(host: str, port: int, *, backlog: int) -> socket.socket:
    """A socket of its own on the port, listening already: connections the kernel hands
    it before its worker is up (or while a dead one is replaced) wait in its backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out, as uvicorn does: asyncio sets TCP_NODELAY only on
    # connections whose socket says so, and without it Nagle's algorithm meeting the
    # client's delayed ACKs held each response about 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
