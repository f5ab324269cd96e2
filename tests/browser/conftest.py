"""Browser tests: Playwright for Python driving Debian's Chromium, never a downloaded one.

`.ci/run` installs `chromium` with apt-get and sets PACTE_REQUIRE_BROWSER=1, so there a
missing browser fails the tests; elsewhere they skip with the reason. Each test gets a
fresh profile (its own user-data directory), and a failing test leaves a screenshot of
each of its pages in a temporary directory named in the failure report.

The app under test is served by uvicorn on a free local port, in a thread of the test
process, so tests can reach the data directory directly (the clock, the trail).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("PACTE_CHROMIUM", "/usr/bin/chromium")
# No GPU, no QUIC, and none of the background traffic a first run starts (component
# updates, sync, field trials): the tests that cut the network off see only the page's.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


# Per module: the sync driver holds an event loop of its own on this thread while it
# runs, which other tests' asyncio loops must not meet.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("PACTE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"PACTE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture
def browser(playwright_driver: Any, request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A browser context with a fresh profile; its pages are screenshotted on failure."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        accept_downloads=True)
    context.set_default_timeout(15_000)
    request.node._pacte_context = context
    yield context
    context.close()


@pytest.fixture
def page(browser: Any) -> Any:
    return browser.pages[0] if browser.pages else browser.new_page()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    context = getattr(item, "_pacte_context", None)
    if report.when != "call" or not report.failed or context is None:
        return
    where = Path(tempfile.mkdtemp(prefix="pacte-browser-"))
    shots = []
    for n, p in enumerate(context.pages):
        path = where / f"{item.name}-{n}.png"
        try:
            p.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a crashed page: say so, do not hide the failure
            shots.append(f"{path}: no screenshot ({exc})")
            continue
        shots.append(f"{path} ({p.url})")
    report.sections.append(("browser screenshots", "\n".join(shots) or "no page open"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        started = threading.Event()
        # uvicorn sets `started` once it listens; waiting on the thread, not on a timer.
        while not self._server.started and self._thread.is_alive():
            started.wait(0.01)
        if not self._server.started:
            raise RuntimeError("uvicorn did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LiveServer]]:
    """serve(app) -> a running LiveServer, stopped after the test."""
    servers: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        server = LiveServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def cut_network_off(context: Any, server: LiveServer) -> list[str]:
    """Abort every request that does not go to the server under test; returns the list
    of aborted URLs (for the test to check that nothing even tried)."""
    aborted: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(server.url + "/"):
            r.continue_()
        else:
            aborted.append(r.request.url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    return aborted
