"""`pacte seed --planted-truth FILE`: planted patterns, the truth written apart."""

from __future__ import annotations

import json
from pathlib import Path

from pacte.predict import KINDS
from tests.test_cli import run


def test_seed_with_a_planted_truth_kept_apart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("init", "--data", str(data))[0] == 0
    inside = data / "truth.jsonl"
    code, _, err = run("seed", "--customers", "5", "--planted-truth", str(inside),
                       "--data", str(data))
    assert code == 2 and "apart" in err and not inside.exists()
    truth = tmp_path / "truth.jsonl"
    code, out, _ = run("seed", "--customers", "300", "--planted-truth", str(truth),
                       "--data", str(data))
    assert code == 0 and "planted truth" in out
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert rows and {r["kind"] for r in rows} <= set(KINDS)
    assert all(r["customer"].startswith("c_") for r in rows)
