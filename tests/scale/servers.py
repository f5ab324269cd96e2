"""`pacte serve` in a subprocess, as on another machine: its own empty working directory,
the store, the KEK, the signing key and the policy handed to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
_READY = "Uvicorn running on"
_WORKER_READY = "Application startup complete"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One running `pacte serve`; its log lines are collected as they come."""

    process: subprocess.Popen[str]
    port: int
    work_dir: Path
    log: list[str] = field(default_factory=list)
    _client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        return self._client

    def graphql(self, key: str, purpose: str, query: str,
                variables: Mapping[str, Any] | None = None) -> httpx.Response:
        return self.client.post("/graphql", json={"query": query, "variables": variables},
                                headers={"Authorization": f"Bearer {key}",
                                         "X-Purpose": purpose})

    def data(self, key: str, purpose: str, query: str,
             variables: Mapping[str, Any] | None = None) -> Any:
        r = self.graphql(key, purpose, query, variables)
        body = r.json()
        assert r.status_code == 200 and "errors" not in body, (self.port, r.status_code, body)
        return body["data"]

    def stop(self) -> None:
        """Ctrl-C, as an operator stops it: it closes its trail cleanly."""
        if self._client is not None:
            self._client.close()
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def workers(self) -> list[int]:
        """The pids of its worker processes (`--workers N`)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid and b"spawn_main" in cmdline:
                pids.append(int(stat.parent.name))
        return pids

    def kill(self) -> None:
        """kill -9: nothing runs after it."""
        if self._client is not None:
            self._client.close()
        self.process.kill()
        self.process.wait()


def _drain(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


class _PortTaken(Exception):
    """Another process bound the free port first."""


def start(work_dir: Path, *, env: Mapping[str, str], args: Sequence[str],
          data: Path | None = None) -> Server:
    """Start `pacte serve` in `work_dir` (made empty) and wait until it listens; its
    `--data` is `data`, else the working directory itself."""
    # The port was free when the kernel named it; on a machine shared with other test
    # runs, another process may bind it before the server does: then on another port.
    for _ in range(4):
        try:
            return _start(work_dir, env=env, args=args, data=data)
        except _PortTaken:
            continue
    return _start(work_dir, env=env, args=args, data=data)


def _start(work_dir: Path, *, env: Mapping[str, str], args: Sequence[str],
           data: Path | None) -> Server:
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pacte", "serve", "--port", str(port),
         "--data", str(data or work_dir), *args],
        cwd=work_dir, env={**env, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    assert process.stdout is not None
    server = Server(process, port, work_dir)
    # Reading blocks until the line comes (no sleeping): uvicorn says so once it
    # listens; with workers, each says so once it is up (the parent's line comes first).
    workers = int(args[list(args).index("--workers") + 1]) if "--workers" in args else 0
    waiting = workers or 1
    for line in process.stdout:
        server.log.append(line)
        if (_WORKER_READY if workers else _READY) in line:
            waiting -= 1
            if not waiting:
                break
    else:
        process.wait()
        if any("Address already in use" in line for line in server.log):
            raise _PortTaken(port)
        raise RuntimeError(f"pacte serve did not start (exit {process.returncode}):\n"
                           + "".join(server.log))
    threading.Thread(target=_drain, args=(process.stdout, server.log), daemon=True).start()
    return server
