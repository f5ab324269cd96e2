"""`pacte seed --sources DIR` then `pacte ingest DIR/*.csv DIR/*.jsonl`, with no other
option: everything goes in, and the customers found match the ground truth."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.ingest_truth import score
from pacte.runtime import Pacte
from pacte.seed.sources import SOURCE_FILES, TRUTH_FILE, write_sources
from tests.conftest import BACKENDS, backend_uri
from tests.helpers import FakeClock

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _files(src: Path) -> list[str]:
    return sorted(str(p) for p in src.glob("*.csv")) + sorted(
        str(p) for p in src.glob("*.jsonl"))


def test_the_command_line_walkthrough(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    src, data = tmp_path / "exports", tmp_path / "data"

    def pacte(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pacte", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)

    out = pacte("seed", "--customers", "120", "--seed", "3", "--sources", str(src))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in src.iterdir() if p.is_file()) == sorted(SOURCE_FILES)
    assert (src / TRUTH_FILE).exists() and str(src / TRUTH_FILE) not in _files(src)
    assert pacte("init", "--data", str(data)).returncode == 0
    out = pacte("ingest", *_files(src), "--data", str(data))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.rstrip().endswith("rejected 0")
    again = pacte("ingest", *_files(src), "--data", str(data))
    read = int(again.stdout.split("read ")[1].split(",")[0])
    assert f"unchanged {read}," in again.stdout


@pytest.fixture(params=BACKENDS)
def uri(request: pytest.FixtureRequest) -> str | None:
    return backend_uri(request)


def test_identity_resolution_against_the_ground_truth(tmp_path: Path, uri: str | None
                                                      ) -> None:
    src = tmp_path / "exports"
    write_sources(src, customers=300, seed=5, now=NOW)
    with Pacte.init(tmp_path / "data", store_uri=uri, now=FakeClock()) as rt:
        report = rt.ingest(_files(src))
        assert report.rejected == 0, report.summary()
        kinds = {Path(f.source).name: f.kind for f in report.files}
        assert kinds == {"crm_customers.csv": "customers", "shop_orders.csv": "orders",
                         "store_pos.csv": "orders",
                         "app_tracker_events.jsonl": "interactions",
                         "iot_platform.jsonl": "devices"}
        result = score(rt, src)
    assert result["missing"] == 0
    assert result["precision"] >= 0.99 and result["recall"] >= 0.95, result
