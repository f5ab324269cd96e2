"""`pacte serve --workers N` spreads connections over its workers (issue #18).

With one listening socket shared by the workers, the first worker to wake accepted
every connection pending: a client opening its keep-alive connections at once had them
all served by one process, and a second worker added nothing. Each worker now listens
on a socket of its own (SO_REUSEPORT), and a worker that dies is replaced on the same
socket, so that no connection waits on a socket nobody accepts from.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.api.workers import spreads_connections
from tests.helpers import build_world
from tests.scale.servers import Server, start
from tests.scale.test_three_servers import READ

pytestmark = pytest.mark.skipif(not spreads_connections(),
                                reason="SO_REUSEPORT spreads connections on Linux only")

CONNECTIONS = 16  # all on one of two sockets by chance: 1 in 2**15


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    world = build_world(tmp_path)
    _, key = world.rt.create_principal(name="shop", role="app", purposes=["service"])
    cid = world.customers["none"]
    data = world.rt.data_dir
    world.rt.close()
    server = start(tmp_path / "cwd", env=os.environ, args=["--workers", "2"], data=data)
    try:
        yield server, key, cid
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.log)


def _sockets(pid: int) -> set[int]:
    """Inodes of the sockets process `pid` holds open."""
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _tcp(port: int) -> dict[int, str]:
    """Inode -> state ("0A" listening, "01" established) of the TCP sockets on local `port`."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                out[int(fields[9])] = fields[3]
    return out


def _request(port: int, key: str, cid: str) -> bytes:
    import json

    body = json.dumps({"query": READ, "variables": {"id": cid}}).encode()
    return (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}"
            f"\r\nX-Purpose: service\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _burst(server: Server, key: str, cid: str) -> list[socket.socket]:
    """CONNECTIONS keep-alive connections opened at once, each answered once."""
    conns = [socket.create_connection(("127.0.0.1", server.port), timeout=60)
             for _ in range(CONNECTIONS)]
    for conn in conns:
        conn.sendall(_request(server.port, key, cid))
    for conn in conns:
        assert conn.recv(12).startswith(b"HTTP/1.1 200"), "".join(server.log)
    return conns


def _by_worker(server: Server, state: str) -> dict[int, set[int]]:
    tcp = _tcp(server.port)
    return {pid: {i for i in _sockets(pid) if tcp.get(i) == state} for pid in server.workers()}


def test_each_worker_listens_on_its_own_socket(served: tuple[Server, str, str]) -> None:
    server, _, _ = served
    listening = _by_worker(server, "0A")
    assert len(listening) == 2
    first, second = listening.values()
    assert len(first) == len(second) == 1 and first != second


def test_connections_opened_at_once_are_spread_over_the_workers(
        served: tuple[Server, str, str]) -> None:
    server, key, cid = served
    conns = _burst(server, key, cid)
    try:
        held = _by_worker(server, "01")
        assert sum(len(s) for s in held.values()) == CONNECTIONS
        assert all(held.values()), {pid: len(s) for pid, s in held.items()}
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_a_killed_worker_is_replaced_on_its_socket(served: tuple[Server, str, str]) -> None:
    server, key, cid = served
    victim = server.workers()[0]
    os.kill(victim, signal.SIGKILL)
    # Connections the kernel hashes to the dead worker's socket wait in its backlog
    # until the replacement accepts them: every one is answered.
    for conn in _burst(server, key, cid):
        conn.close()
    workers = server.workers()
    assert len(workers) == 2 and victim not in workers


def test_a_second_server_on_the_port_is_refused(served: tuple[Server, str, str],
                                                 tmp_path: Path) -> None:
    """SO_REUSEPORT must not let a second `pacte serve` join the first one's port."""
    import subprocess

    from tests.scale.servers import ROOT

    server, _, _ = served
    second = subprocess.Popen(
        [sys.executable, "-m", "pacte", "serve", "--port", str(server.port), "--workers", "2",
         "--data", str(tmp_path / "data")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = second.communicate(timeout=120)
    finally:
        if second.poll() is None:  # it joined the port: stop it and its workers
            os.killpg(second.pid, signal.SIGKILL)
            second.wait()
    assert second.returncode != 0
    assert "cannot listen on" in out


def test_connections_on_a_worker_socket_are_sent_without_delay() -> None:
    """asyncio turns Nagle's algorithm off only on sockets made as TCP sockets: without
    it each small response waited for the client's delayed ACK (about 40 ms)."""
    import asyncio

    from pacte.api.workers import _listener

    async def nodelay() -> int:
        sock = _listener("127.0.0.1", 0, backlog=8)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        try:
            return await asyncio.wait_for(seen, timeout=30)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(nodelay()) != 0
