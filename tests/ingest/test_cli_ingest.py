"""`pacte ingest` as a user runs it: summary line, exit codes, stdin, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pacte.runtime import Pacte

ROOT = Path(__file__).resolve().parents[2]


def _pacte(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pacte", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, input=stdin and
                          stdin.decode(), capture_output=True, text=True)


def test_summary_and_exit_codes(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    Pacte.init(data).close()
    good = tmp_path / "customers.csv"
    good.write_text("customer_id,name,email\nC1,Ann,ann@example.com\n", encoding="utf-8")
    out = _pacte("ingest", str(good), "--data", data)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("read 1, created 1, updated 0, merged 0, unchanged 0, "
                                  "rejected 0")
    bad = tmp_path / "more_customers.csv"
    bad.write_text("customer_id,name,email\nC2,Bo,not-an-email\n", encoding="utf-8")
    out = _pacte("ingest", str(bad), "--data", data)
    assert out.returncode == 1
    assert "rejected 1 (rejected rows: " in out.stdout and "Bo" not in out.stdout


def test_standard_input(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    Pacte.init(data).close()
    rows = b'{"customer_id": "C1", "email": "ann@example.com"}\n'
    out = _pacte("ingest", "-", "--format", "jsonl", "--data", data, stdin=rows)
    assert out.returncode == 0, out.stderr
    assert "created 1" in out.stdout


def test_a_malformed_file_is_one_line_on_stderr(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    Pacte.init(data).close()
    for target in (tmp_path, tmp_path / "missing.csv"):
        out = _pacte("ingest", str(target), "--data", data)
        assert out.returncode == 1
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
        assert "Traceback" not in out.stderr
