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
    keys = dict(re.findall(r"^(app|auditor|analyst)\s+key: (pk_\S+)$", result.stdout,
                           flags=re.M))
    assert keys.keys() == {"app", "auditor", "analyst"}
    saved = data / "demo-keys.json"
    assert saved.stat().st_mode & 0o777 == 0o600
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
    # A second run reuses the data, the keys and the sample customer.
    again = CliRunner().invoke(app, ["demo", "--data", str(data), "--no-serve"])
    assert again.exit_code == 0 and "seeded" not in again.stdout
    assert "keys reused from" in again.stdout
    assert dict(re.findall(r"^(app|auditor|analyst)\s+key: (pk_\S+)$", again.stdout,
                           flags=re.M)) == keys
    with Pacte.open(data) as rt:
        assert [p["name"] for p in rt.list_principals()].count("demo-app") == 1


def test_the_demo_sample_has_consents_recommendations_and_its_own_trail(
        tmp_path: Path) -> None:
    import json

    from pacte.demo import prepare_demo

    with Pacte.init(tmp_path / "demo") as rt:
        demo = prepare_demo(rt, customers=2000)
        app_ = rt.authenticate(demo.keys["app"])
        cid = demo.sample
        consents = {c.purpose: c.status.value if hasattr(c.status, "value") else c.status
                    for c in rt.session(app_, "service").consents(cid)}
        assert consents["personalization"] == "granted" and consents["marketing"] == "granted"
        assert rt.session(app_, "personalization").recommendations(cid)
        uses = rt.session(app_, "self_service").my_data_uses(cid, first=50)
        # Only the demo app's own uses: the bulk seeding never named this customer.
        assert uses and {u.record["principal_name"] for u in uses} == {"demo-app"}
        again = prepare_demo(rt)
        assert again.sample == cid and again.reused and again.keys == demo.keys
        saved = json.loads((rt.data_dir / "demo-keys.json").read_text())
        assert saved == {"keys": demo.keys, "sample": cid}


def test_serve_help_has_an_example() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "Example: pacte serve" in result.stdout
