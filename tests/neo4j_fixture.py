"""A real Neo4j 5.26 server for the tests, built with Maven and started once per session.

Use from a conftest (``tests`` is a package, so this import works under pytest's default
import mode)::

    from tests.neo4j_fixture import neo4j_server, neo4j_store, neo4j_uri  # noqa: F401

`neo4j_server` / `neo4j_uri` are session-scoped: one JVM per pytest session, on a port the
kernel chose (no races between concurrent sessions). `neo4j_store` is per test: a fresh
`Neo4jStore` on an emptied database. Without `java` (or without `mvn` while the server jar
still has to be built) the tests are skipped, unless PACTE_REQUIRE_NEO4J=1 (CI), which turns
that skip into a failure so CI can never go green by silently not testing Neo4j.

The helpers below are plain functions too (`build_server`, `start_server`), for benchmarks
or a manual session: ``python -m tests.neo4j_fixture`` starts a server until Enter.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pacte.graph.neo4j_store import Neo4jStore

__all__ = [
    "JVM_OPTIONS",
    "LOAD_JVM_OPTIONS",
    "SERVER_DIR",
    "Neo4jServer",
    "Neo4jUnavailable",
    "build_server",
    "clean_database",
    "missing_tools",
    "neo4j_server",
    "neo4j_store",
    "neo4j_uri",
    "start_server",
]

SERVER_DIR = Path(__file__).resolve().parent / "neo4j_server"
TARGET_DIR = SERVER_DIR / "target"
JAR = TARGET_DIR / "neo4j-test-server.jar"
# Written after a successful build: the jar plugin leaves the jar untouched when only the
# pom changed, so the jar's own mtime cannot tell whether a build is up to date.
BUILD_STAMP = TARGET_DIR / ".pacte-build-ok"
BUILD_LOCK = TARGET_DIR / ".build.lock"  # target/ is git-ignored

REQUIRE_ENV = "PACTE_REQUIRE_NEO4J"
# Heap for a handful of test graphs; the page cache (32 MiB) is set in Main.java. Serial GC
# and C1 only: two cores and a short-lived JVM, where startup time dominates.
JVM_OPTIONS = ("-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")
# For benchmarks that load a large graph (100k customers: about 4 GB of store files): the
# full JIT (C2 writes about 3x faster than C1 once warm), a heap in which 1000-customer
# transactions do not push each other into the old generation (with 2 GB, a 20k-customer
# load spent 8% of its time collecting garbage, against 2% with 4 GB, and was 20% slower),
# and a page cache that holds the whole store (Main.java reads -Dpacte.pagecache; it is
# allocated as the store grows).
LOAD_JVM_OPTIONS = ("-Xms4g", "-Xmx4g", "-XX:+UseParallelGC", "-XX:+ExitOnOutOfMemoryError",
                    f"-Dpacte.pagecache={6 * 2**30}", f"-Dpacte.txmemory={2**30}",
                    "-Djava.awt.headless=true")
BUILD_TIMEOUT = 900.0  # the first build downloads ~125 MB of jars from Maven Central
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
_STDERR_TAIL = 40


class Neo4jUnavailable(RuntimeError):
    """The test server cannot run here (a tool is missing) - a skip, not a bug."""


@dataclass
class Neo4jServer:
    """One running test server; `stop()` is idempotent."""

    process: subprocess.Popen[bytes]
    port: int
    home: Path
    stderr_path: Path
    started_in: float
    _stopped: bool = field(default=False, repr=False)

    @property
    def uri(self) -> str:
        return f"neo4j://127.0.0.1:{self.port}"

    @property
    def bolt_uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int | None:
        """Resident memory of the JVM (Linux only), for reports."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None

    def stop(self, *, timeout: float = STOP_TIMEOUT) -> None:
        if self._stopped:
            return
        self._stopped = True
        # Closing stdin is the server's signal for a clean shutdown (see Main.java).
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()


# -- plain helpers ------------------------------------------------------------------


def missing_tools() -> str | None:
    """Why the server cannot run here, or None when it can."""
    if shutil.which("java") is None:
        return "java is not on PATH (Neo4j tests need Java 17+)"
    if not _build_is_current() and shutil.which("mvn") is None:
        return "mvn is not on PATH (needed once to build tests/neo4j_server)"
    return None


def _sources_mtime() -> float:
    sources = [SERVER_DIR / "pom.xml", *(SERVER_DIR / "src").rglob("*")]
    return max(p.stat().st_mtime for p in sources if p.is_file())


def _build_is_current() -> bool:
    try:
        return JAR.is_file() and BUILD_STAMP.stat().st_mtime >= _sources_mtime()
    except OSError:
        return False


def build_server(*, timeout: float = BUILD_TIMEOUT) -> Path:
    """Build the server jar with Maven unless it is newer than its sources; returns it.

    An exclusive file lock makes concurrent pytest sessions wait for one build instead of
    running Maven twice into the same target directory.
    """
    if _build_is_current():
        return JAR
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jUnavailable("mvn is not on PATH (needed once to build tests/neo4j_server)")
    TARGET_DIR.mkdir(exist_ok=True)
    with BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _build_is_current():  # another session built it while we waited
                return JAR
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [mvn, "-q", "-B", "-f", str(SERVER_DIR / "pom.xml"), "package",
                     "-DskipTests"],
                    cwd=SERVER_DIR, capture_output=True, timeout=timeout, check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"building the Neo4j test server took over {timeout:.0f} s"
                                   ) from exc
            if done.returncode != 0 or not JAR.is_file():
                output = (done.stdout + done.stderr).decode("utf-8", "replace")
                tail = "\n".join(output.splitlines()[-_STDERR_TAIL:])
                raise RuntimeError(
                    f"building the Neo4j test server failed (mvn exit {done.returncode}):\n{tail}")
            BUILD_STAMP.write_text(f"built in {time.monotonic() - started:.1f} s\n")
            return JAR
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stderr_tail(path: Path) -> str:
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return "(no stderr captured)"
    return "\n".join(lines[-_STDERR_TAIL:]) or "(stderr is empty)"


def start_server(
    home: Path, *, timeout: float = START_TIMEOUT, port: int = 0, jar: Path = JAR,
    jvm_options: Sequence[str] = JVM_OPTIONS,
) -> Neo4jServer:
    """Start the server in the fresh directory `home` and wait until Bolt accepts connections.

    `jvm_options` default to the test suite's small, quick-starting JVM; benchmarks that
    load a large graph pass `LOAD_JVM_OPTIONS`.
    """
    java = shutil.which("java")
    if java is None:
        raise Neo4jUnavailable("java is not on PATH (Neo4j tests need Java 17+)")
    home.mkdir(parents=True, exist_ok=True)
    stderr_path = home / "server.stderr"
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        # stderr goes to a file, never a pipe: nobody drains it while the tests run, and a
        # full pipe would block the server.
        process = subprocess.Popen(
            [java, *jvm_options, "-jar", str(jar), str(port), str(home / "neo4j")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=home,
        )
    assert process.stdout is not None
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = process.stdout
    # readline() cannot time out, so a thread reads and the wait below can.
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    server = Neo4jServer(process, 0, home, stderr_path, 0.0)
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        server.stop(timeout=5)
        raise RuntimeError(f"the Neo4j test server was not ready after {timeout:.0f} s; "
                           f"stderr tail:\n{_stderr_tail(stderr_path)}") from None
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("READY "):
        server.stop(timeout=5)
        raise RuntimeError(
            f"the Neo4j test server failed to start (exit {process.poll()}, said {text!r}); "
            f"stderr tail:\n{_stderr_tail(stderr_path)}")
    server.port = int(text.split()[1])
    server.started_in = time.monotonic() - started
    return server


def clean_database(uri: str) -> None:
    """Empty the database (data only: constraints and indexes stay, as a store made them)."""
    import neo4j

    # In slices: one transaction deleting a benchmark's graph outgrows the server's
    # transaction memory (256 MiB in the small JVM the tests start).
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        while driver.execute_query(
                "MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*)").records[0][0]:
            pass


# -- one server per process, shared by every fixture definition -------------------
#
# The fixture may be imported both by tests/conftest.py and by a test module; pytest
# then holds two session-scoped definitions. A reference count keeps them on one JVM.

_lock = threading.Lock()
_shared: Neo4jServer | None = None
_users = 0
_failure: BaseException | None = None


def _acquire(base: Path) -> Neo4jServer:
    global _shared, _users, _failure
    with _lock:
        if _failure is not None:
            raise _failure
        if _shared is None:
            try:
                build_server()
                _shared = start_server(base / "neo4j-test-server")
            except BaseException as exc:
                _failure = exc
                raise
        _users += 1
        return _shared


def _release() -> None:
    global _shared, _users
    with _lock:
        _users -= 1
        if _users == 0 and _shared is not None:
            _shared.stop()
            _shared = None


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"Neo4j tests cannot run: {reason} ({REQUIRE_ENV}=1 forbids skipping)",
                    pytrace=False)
    pytest.skip(f"Neo4j tests skipped: {reason}")


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jServer]:
    """The running test server (built on first use)."""
    reason = missing_tools()
    if reason is not None:
        _unavailable(reason)
    try:
        server = _acquire(tmp_path_factory.getbasetemp())
    except Neo4jUnavailable as exc:
        _unavailable(str(exc))
        raise  # not reached: _unavailable always raises
    try:
        yield server
    finally:
        _release()


@pytest.fixture(scope="session")
def neo4j_uri(neo4j_server: Neo4jServer) -> str:
    """``neo4j://127.0.0.1:<port>`` of the running test server."""
    return neo4j_server.uri


@pytest.fixture
def neo4j_store(neo4j_uri: str) -> Iterator[Neo4jStore]:
    """A fresh `Neo4jStore` on an empty database, closed after the test."""
    from pacte.graph.neo4j_store import Neo4jStore

    clean_database(neo4j_uri)
    store = Neo4jStore(neo4j_uri)
    try:
        yield store
    finally:
        store.close()


def _main() -> None:  # pragma: no cover - manual use
    build_server()
    with tempfile.TemporaryDirectory(prefix="pacte-neo4j-") as tmp:
        server = start_server(Path(tmp))
        rss = server.rss_bytes() or 0
        print(f"{server.uri} (bolt: {server.bolt_uri}) ready in {server.started_in:.1f} s, "
              f"RSS {rss / 2**20:.0f} MiB; press Enter to stop")
        try:
            input()
        finally:
            server.stop()


def server_reads(store: Neo4jStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations of the reads the store sends to its server, from now on."""
    calls: list[str] = []
    query = store._query

    def counting(operation: str, *args: object) -> object:
        calls.append(operation)
        return query(operation, *args)

    monkeypatch.setattr(store, "_query", counting)
    return calls


if __name__ == "__main__":
    _main()
