"""G10: the API, the analytics, the CLI, ingestion, identity and the features reach
customer data only through a Session.

What each package may import is declared as import contracts in pyproject.toml
(`[tool.importlinter]`, run by `lint-imports` in .ci/run): no front door imports a
store backend, the crypto or the codec; no feature imports the door's modules; no
cycle between sibling modules. This test checks what imports cannot express: which
attributes a front door uses (the backend's are offered by no public name, and none
is reached for by a private one), which primitives of the door a feature calls, and
that the contracts name every front door.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

import pacte
from pacte.features.door import Door
from pacte.graph.session import Session

ROOT = Path(pacte.__file__).resolve().parent
FEATURES = sorted(ROOT.joinpath("features").glob("*.py"))
# Layers below the door, and the seed generator, which makes plaintext batches only.
BELOW = {"graph", "audit", "crypto", "seed"}
PACKAGES = sorted(p.name for p in ROOT.iterdir() if p.joinpath("__init__.py").exists())
FRONT_DOORS = sorted(f for name in PACKAGES if name not in BELOW
                     for f in ROOT.joinpath(name).glob("*.py"))
FORBIDDEN_ATTRIBUTES = {"store", "vault", "codec", "cipher", "signer", "principals",
                        "_backend", "_b"}
CONTRACTS = {c["id"]: c for c in tomllib.loads(
    ROOT.parent.joinpath("pyproject.toml").read_text(encoding="utf-8"))[
        "tool"]["importlinter"]["contracts"]}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("path", FRONT_DOORS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_front_doors_do_not_reach_past_the_session(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_ATTRIBUTES, (
                f"{path.name}:{node.lineno} reaches .{node.attr} directly")


def test_the_contracts_name_every_front_door() -> None:
    """A new package above the door (a console, predictions) is held to the contract."""
    declared = set(CONTRACTS["front-doors"]["source_modules"])
    assert {f"pacte.{name}" for name in PACKAGES if name not in BELOW} <= declared
    assert set(CONTRACTS["features-see-the-door"]["forbidden_modules"]) >= {
        "pacte.graph.session", "pacte.graph.access", "pacte.runtime", "pacte.audit"}


def test_the_check_sees_the_files() -> None:
    names = {f"{p.parent.name}/{p.name}" for p in FRONT_DOORS}
    assert {"cli/data.py", "cli/serve.py", "api/schema.py", "features/customers.py",
            "features/rights.py", "ingest/runner.py", "identity/explain.py"} <= names
    assert len(FRONT_DOORS) > 5 and len(FEATURES) > 8


_PROTOCOL = next(n for n in ast.parse(ROOT.joinpath("features", "door.py").read_text()).body
                 if isinstance(n, ast.ClassDef) and n.name == Door.__name__)
DOOR_MEMBERS = {n.name for n in _PROTOCOL.body if isinstance(n, ast.FunctionDef)} | {
    n.target.id for n in _PROTOCOL.body
    if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


@pytest.mark.parametrize("path", FEATURES, ids=lambda p: p.name)
def test_features_see_the_session_only_through_its_primitives(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if path.name == "door.py":
        return
    for node in ast.walk(tree):
        # `door` is how every feature names the session; of it, only the primitives.
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "door":
            assert node.attr in DOOR_MEMBERS, (
                f"{path.name}:{node.lineno} calls door.{node.attr}, not a primitive")
        assert not (isinstance(node, ast.Attribute) and node.attr == "_b"), (
            f"{path.name}:{node.lineno} reaches the backend")


def test_the_session_offers_every_primitive() -> None:
    missing = [name for name in DOOR_MEMBERS if not hasattr(Session, name)
               and name not in Session.__init__.__code__.co_names]
    assert missing == []


def test_the_door_imports_no_feature_but_to_bind_it() -> None:
    """The door's modules import no feature; the session imports them only to bind them
    as its methods, so features may never import the door back (no cycle)."""
    for name in ("access.py", "steps.py", "checks.py"):
        for lineno, module in _imports(ast.parse(ROOT.joinpath("graph", name).read_text())):
            assert not module.startswith("pacte.features"), f"{name}:{lineno} imports {module}"
    bound = {f"_{p.stem}" for p in FEATURES if p.stem not in ("__init__", "door")}
    tree = ast.parse(ROOT.joinpath("graph", "session.py").read_text(encoding="utf-8"))
    session = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Session")
    used = {n.id for n in ast.walk(session) if isinstance(n, ast.Name) and n.id in bound}
    methods = [n for n in ast.walk(session) if isinstance(n, ast.FunctionDef)]
    for method in methods:
        for n in ast.walk(method):
            assert not (isinstance(n, ast.Name) and n.id in bound), (
                f"Session.{method.name} calls a feature; the door decides, features ask it")
    assert used == bound


def test_a_session_method_named_like_a_feature_is_that_feature() -> None:
    """No door method shadows a feature function of the same name (two versions of one
    operation, one of them unchecked by the `Door` protocol)."""
    import importlib

    for path in FEATURES:
        if path.stem in ("__init__", "door"):
            continue
        module = importlib.import_module(f"pacte.features.{path.stem}")
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and getattr(Session, name, None) is value:
                continue
            # Constants and helpers shared between features are not bound.
            assert not callable(value) or name not in vars(Session), name
