"""A SQLite-only install does without the `neo4j` and `report` extras (issue #22).

Run in a subprocess where importing the Neo4j driver, matplotlib or numpy fails, as on
a machine that installed `pip install pacte` alone: the demo's whole path works (init,
seed, keys, a GraphQL request, erasure), and the extras' features say which extra to
install, in one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = textwrap.dedent('''
    import importlib.abc, sys

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("neo4j", "matplotlib", "numpy"):
                raise ImportError(f"No module named {name!r}")

    sys.meta_path.insert(0, Missing())

    from typer.testing import CliRunner
    from pacte.cli import app
    from pacte.api import create_app
    from pacte.demo import prepare_demo
    from pacte.errors import ConfigError
    from pacte.runtime import Pacte
    from tests.api.conftest import Api

    data = sys.argv[1]
    with Pacte.init(data) as rt:
        demo = prepare_demo(rt, customers=40)
        api = Api(create_app(rt))
        r = api.post("{ customer(id: \\"%s\\") { name consents { purpose } } }" % demo.sample,
                     key=demo.keys["app"], purpose="service")
        assert r.status_code == 200 and r.json()["data"]["customer"]["name"], r.text
        api.close()
        rt.operator_session("self_service").erase(demo.sample)
    runner = CliRunner()
    done = runner.invoke(app, ["analytics", "report", "--data", data])
    assert done.exit_code == 1, done.output
    assert done.stderr == "error: the HTML report needs matplotlib: pip install 'pacte[report]'\\n"
    done = runner.invoke(app, ["init", "--data", data + "-neo", "--store", "neo4j://x:7687"])
    assert done.exit_code == 1, done.output
    assert "pip install 'pacte[neo4j]'" in done.stderr and done.stderr.count("\\n") == 1
    for name in ("neo4j", "matplotlib", "numpy"):
        assert name not in sys.modules, name
    print("ok")
''')


def test_the_core_runs_without_the_heavy_extras(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "data")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
