"""The session's decision caches answer by value: a cached answer is never handed to
another question (issue #16, part 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pacte.graph.session as session_module
from pacte.graph.model import NODE_KINDS, Field
from tests.helpers import build_world


@pytest.fixture
def session(tmp_path: Path) -> session_module.Session:
    world = build_world(tmp_path)
    return world.rt.session(world.principals["app"], "marketing.email")


def test_a_stale_entry_under_a_reused_id_is_not_believed(
        session: session_module.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = NODE_KINDS["Customer"].fields
    answer = session._split(customer)
    # Another tuple of fields gets the id a cached tuple had (as after garbage collection):
    # plant the cached answer under the new tuple's id and ask about the new tuple.
    behaviour = NODE_KINDS["Interaction"].fields
    key = (session._b.policy.version, session.principal.role, session.purpose.id,
           id(behaviour))
    monkeypatch.setitem(session_module._SPLITS, key, (customer, answer))
    allowed, withheld = session._split(behaviour)
    expected_allowed, expected_withheld = session._compute_split(behaviour)
    assert (allowed, withheld) == (expected_allowed, expected_withheld)
    assert (allowed, withheld) != answer


def test_the_split_cache_is_bounded(session: session_module.Session,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "_SPLITS", {})
    monkeypatch.setattr(session_module, "_MAX_NAMES", 8)
    made = [(Field(f"f{n}", category=None),) for n in range(50)]
    for fields in made:
        session._split(fields)
    assert len(session_module._SPLITS) == 8
    # Past the bound the answer is computed, not cached, and still right.
    assert session._split(made[-1]) == session._compute_split(made[-1])
