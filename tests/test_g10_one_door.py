"""G10: the API, the analytics and the CLI reach customer data only through a Session.

A static check over their source: none of them touches a store, the key vault, the
codec or the cipher, so there is no second path to the data to forget to guard.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pacte

ROOT = Path(pacte.__file__).resolve().parent
FRONT_DOORS = sorted([*ROOT.joinpath("api").glob("*.py"), *ROOT.joinpath("analytics").glob("*.py"),
                      *ROOT.joinpath("cli").glob("*.py")])
FORBIDDEN_ATTRIBUTES = {"store", "vault", "codec", "cipher"}
FORBIDDEN_MODULES = ("pacte.crypto", "pacte.graph.sqlite_store", "pacte.graph.neo4j_store",
                     "pacte.graph.codec", "pacte.graph.stores")


@pytest.mark.parametrize("path", FRONT_DOORS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_front_doors_do_not_reach_past_the_session(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_ATTRIBUTES, (
                f"{path.name}:{node.lineno} reaches .{node.attr} directly")
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(FORBIDDEN_MODULES), (
                f"{path.name}:{node.lineno} imports {node.module}")
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith(FORBIDDEN_MODULES), (
                    f"{path.name}:{node.lineno} imports {alias.name}")


def test_the_check_sees_the_files() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in FRONT_DOORS}
    assert {"cli/data.py", "cli/serve.py", "api/schema.py"} <= names and len(FRONT_DOORS) > 5
