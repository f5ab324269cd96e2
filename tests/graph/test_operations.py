"""Each operation declared once (pacte.graph.operations), and what a purpose may do
beyond reading taken from the policy file: a new purpose is one edit of policy.toml."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pacte
from pacte.errors import ConfigError, PurposeNotGranted
from pacte.graph.operations import OPERATIONS, Action, Capability
from pacte.graph.policy import DEFAULT_POLICY_TOML, Policy
from pacte.runtime import Pacte
from tests.helpers import FakeClock

ROOT = Path(pacte.__file__).resolve().parent

# A purpose of its own for privacy requests, which may erase and nothing else.
PRIVACY_DESK = """
[[purpose]]
id = "privacy_desk"
legal_basis = "legal_obligation"
description = "The privacy desk answering erasure requests."
categories = ["user"]
may = ["erase"]
"""


def test_every_action_is_declared_once() -> None:
    assert set(OPERATIONS) == set(Action)


def test_features_name_actions_by_the_enum_and_gate_through_declarations() -> None:
    """No action or role string in the features: they name an `Action` and ask
    `door._gate`, which checks the declaration."""
    literals = {a.value for a in Action} | {"app", "admin", "analyst", "auditor",
                                            "self_service", "personalization"}
    for path in sorted(ROOT.joinpath("features").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = {id(n) for a in tree.body if isinstance(a, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in a.targets)
                    for n in ast.walk(a.value)}  # function names such as "explain"
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in exported:
                assert node.value not in literals, f"{path.name}:{node.lineno} {node.value!r}"
            assert not (isinstance(node, ast.Attribute) and node.attr == "_require_purpose")


def _with_purpose(tmp_path: Path, extra: str) -> tuple[Pacte, str]:
    data = tmp_path / "data"
    Pacte.init(data, now=FakeClock()).close()
    policy = data / "policy.toml"
    head, _, tail = policy.read_text(encoding="utf-8").partition("[privacy]\n")
    policy.write_text(f"{head}{extra}\n[privacy]\n{tail}", encoding="utf-8")
    rt = Pacte.open(data, now=FakeClock())
    cid = rt.operator_session("service").upsert_customer(
        name="Zelda Quorn", email="zelda.quorn@example.com").id
    return rt, cid


def test_a_new_purpose_that_may_erase_can_erase(tmp_path: Path) -> None:
    rt, cid = _with_purpose(tmp_path, PRIVACY_DESK)
    try:
        desk, _ = rt.create_principal(name="desk", role="app", purposes=["privacy_desk"])
        session = rt.session(desk, "privacy_desk")
        with pytest.raises(PurposeNotGranted, match="'self_service'"):
            session.export(cid)  # it may erase, not export
        receipt = session.erase(cid)
        assert receipt["destroyed"]["Customer"] == 1
        # Gone for every purpose.
        assert rt.session(desk, "privacy_desk").customers(first=5).items == []
    finally:
        rt.close()


def test_a_purpose_without_the_capability_may_not_erase(tmp_path: Path) -> None:
    rt, cid = _with_purpose(tmp_path, PRIVACY_DESK.replace('may = ["erase"]', ""))
    try:
        desk, _ = rt.create_principal(name="desk", role="app", purposes=["privacy_desk"])
        with pytest.raises(PurposeNotGranted, match="may erase: 'self_service'"):
            rt.session(desk, "privacy_desk").erase(cid)
    finally:
        rt.close()


def test_capabilities_come_down_to_child_purposes() -> None:
    policy = Policy.parse(DEFAULT_POLICY_TOML.replace("[privacy]", """
[[purpose]]
id = "personalization.web"
parent = "personalization"
legal_basis = "consent"
categories = ["user.behavior"]

[privacy]"""))
    assert policy.allows("personalization.web", Capability.RECOMMEND)
    assert not policy.allows("service", Capability.RECOMMEND)


def test_a_policy_written_before_capabilities_keeps_its_meaning() -> None:
    old = "\n".join(line for line in DEFAULT_POLICY_TOML.splitlines()
                    if not line.startswith("may ="))
    policy = Policy.parse(old)
    for capability in (Capability.ERASE, Capability.EXPORT, Capability.MANAGE_CONSENT,
                       Capability.OWN_AUDIT):
        assert policy.allows("self_service", capability)
    assert policy.allows("personalization", Capability.RECOMMEND)
    assert not policy.allows("service", Capability.ERASE)


def test_an_unknown_capability_is_refused() -> None:
    with pytest.raises(ConfigError, match="may must be a list of"):
        Policy.parse(DEFAULT_POLICY_TOML.replace('may = ["recommend"]', 'may = ["sell"]'))
