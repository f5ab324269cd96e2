"""`pacte serve` runs on httptools and uvloop, and without them where they are missing."""

from __future__ import annotations

import importlib.util

import pytest

from pacte.api.server_stack import server_stack


def test_the_fast_parser_and_loop_when_installed() -> None:
    # Both are dependencies of pacte: a plain install serves with them.
    assert server_stack() == ("httptools", "uvloop")


@pytest.mark.parametrize("missing", ["httptools", "uvloop"])
def test_falls_back_when_one_is_missing(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture, missing: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else real(name, *a))
    stack = server_stack()
    assert stack.http == ("h11" if missing == "httptools" else "httptools")
    assert stack.loop == ("asyncio" if missing == "uvloop" else "uvloop")
    assert missing in caplog.text
