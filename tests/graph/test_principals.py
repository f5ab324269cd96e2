"""API keys: shown once, stored as a hash, revocable, and every failure audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacte.errors import InputError, Unauthenticated
from pacte.runtime import Pacte
from tests.helpers import FakeClock


@pytest.fixture
def rt(tmp_path: Path) -> Pacte:
    return Pacte.init(tmp_path / "data", now=FakeClock())


def test_a_key_authenticates_its_principal_and_only_its_hash_is_stored(rt: Pacte) -> None:
    principal, key = rt.create_principal(name="crm", role="app", purposes=["service"])
    assert rt.authenticate(key) == principal
    rt.close()
    raw = b"".join(p.read_bytes() for p in rt.data_dir.iterdir() if p.is_file())
    assert key.encode() not in raw


@pytest.mark.parametrize("key", [None, "", "pk_unknown", "not-a-key", "pk_" + "x" * 500])
def test_bad_keys_are_refused_and_audited(rt: Pacte, key: str | None) -> None:
    before = rt._backend.audit.size()
    with pytest.raises(Unauthenticated):
        rt.authenticate(key)
    last = rt._backend.audit.entries(after_seq=before - 1, limit=5)
    assert [e.record["action"] for e in last] == ["auth"]
    assert last[0].record["outcome"] == "denied"
    rt.close()


def test_revocation_holds_on_the_next_request(rt: Pacte) -> None:
    principal, key = rt.create_principal(name="crm", role="app", purposes=["service"])
    rt.revoke_principal(principal.id)
    with pytest.raises(Unauthenticated):
        rt.authenticate(key)
    assert [p.revoked for p in rt._backend.principals.list() if p.id == principal.id] == [True]
    rt.close()


def test_creation_checks_role_and_purposes(rt: Pacte) -> None:
    with pytest.raises(InputError, match="unknown role"):
        rt.create_principal(name="x", role="root", purposes=[])
    with pytest.raises(InputError, match="unknown purpose"):
        rt.create_principal(name="x", role="app", purposes=["mind_reading"])
    with pytest.raises(InputError):
        rt.create_principal(name="  ", role="app", purposes=[])
    rt.close()
