"""GraphiQL's page and files are pacte's own, pinned, and point nowhere else (the
browser test is tests/browser/test_graphiql.py)."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

from pacte.api import create_app
from tests.api.conftest import Api
from tests.helpers import World


def test_graphiql_page_allows_nothing_external(world: World) -> None:
    api = Api(create_app(world.rt, dev=True))
    try:
        r = api.request("GET", "/graphql", headers={"Accept": "text/html"})
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "http" not in csp
        for src in re.findall(r'(?:src|href)="([^"]+)"', r.text):
            assert src.startswith(("/graphiql/static/", "data:")), src
            if src.startswith("/"):
                asset = api.request("GET", src)
                assert asset.status_code == 200, src
                assert asset.headers["content-security-policy"] == csp
        assert api.request("GET", "/graphiql/static/..%2Fapp.py").status_code == 404
        assert api.request("GET", "/graphiql/static/README.md").status_code == 404
    finally:
        api.close()
    # Not served at all without --dev.
    api = Api(create_app(world.rt))
    try:
        assert api.request("GET", "/graphiql/static/start.js").status_code == 404
    finally:
        api.close()


def test_vendored_files_are_the_pinned_ones() -> None:
    folder = resources.files("pacte.api").joinpath("static", "graphiql")
    readme = folder.joinpath("README.md").read_text(encoding="utf-8")
    pinned = dict((name, digest) for digest, name in
                  re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
    assert len(pinned) == 4
    for name, digest in pinned.items():
        data = Path(str(folder.joinpath(name))).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
    for licence in ("LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"):
        assert "MIT License" in folder.joinpath(licence).read_text(encoding="utf-8")
