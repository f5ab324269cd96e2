"""`pacte demo --no-serve` prepares a directory and prints working keys and queries."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from pacte.api import create_app
from pacte.cli import app
from pacte.runtime import Pacte
from tests.api.conftest import Api


def test_demo_no_serve(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--data", str(data), "--customers", "30",
                                      "--no-serve"])
    assert result.exit_code == 0, result.output
    keys = dict(re.findall(r"^(app|auditor|analyst)\s+key \(.*\): (pk_\S+)$", result.stdout,
                           flags=re.M))
    assert keys.keys() == {"app", "auditor", "analyst"}
    curls = [line for line in result.stdout.splitlines() if line.startswith("curl ")]
    assert len(curls) >= 4
    with Pacte.open(data) as rt:
        api = Api(create_app(rt))
        try:
            for line in curls:
                argv = shlex.split(line)
                headers = dict(argv[i + 1].split(": ", 1) for i, a in enumerate(argv)
                               if a == "-H")
                body = argv[argv.index("-d") + 1]
                r = api.request("POST", content=body.encode(), headers=headers)
                assert r.status_code == 200 and "errors" not in r.json(), (line, r.text)
        finally:
            api.close()
    # A second run reuses the data and makes new keys.
    again = CliRunner().invoke(app, ["demo", "--data", str(data), "--no-serve"])
    assert again.exit_code == 0 and "seeding" not in again.stdout


def test_serve_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "Example: pacte serve" in result.stdout
