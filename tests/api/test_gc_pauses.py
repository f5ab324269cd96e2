"""`pacte serve` freezes the heap it starts with, so full collections stop walking it."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from pacte.cli.serve import _serve
from pacte.runtime import Pacte


def test_serve_freezes_the_startup_heap_before_serving(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    frozen_when_serving: list[int] = []

    def run(app: Any, **_: Any) -> None:
        frozen_when_serving.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", run)
    # The process's logging is the test runner's: left as it is.
    monkeypatch.setattr("pacte.api.logs.configure_logging", lambda **_: None)
    rt = Pacte.init(tmp_path / "data")
    gc.unfreeze()
    try:
        _serve(rt, host="127.0.0.1", port=8000, dev=False, log_level="warning")
    finally:
        gc.unfreeze()
        rt.close()
    # The app (and its schema) were built before: they are among the frozen objects.
    assert frozen_when_serving and frozen_when_serving[0] > 10_000
