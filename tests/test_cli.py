"""The command line through its runner: each command, and bad input as one clear line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacte.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    code, _out, err = run("init", "--data", str(path))
    assert code == 0, err
    return path


def test_init_creates_the_data_directory_with_private_keys(data: Path) -> None:
    for name in ("policy.toml", "graph.db", "keys.db", "audit.db", "master.key", "signing.key"):
        assert (data / name).exists(), name
    for secret in ("master.key", "signing.key"):
        assert (data / secret).stat().st_mode & 0o077 == 0
    code, _, err = run("init", "--data", str(data))
    assert code == 1 and err.count("\n") == 1 and "already initialised" in err


def test_seed_then_stats_is_reproducible(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        path = tmp_path / name
        assert run("init", "--data", str(path))[0] == 0
        code, out, err = run("seed", "--customers", "30", "--seed", "5", "--data", str(path))
        assert code == 0, err
        assert "seeded 30 customers" in out
        code, out, _ = run("stats", "--data", str(path))
        assert code == 0
        outputs.append(out)
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    counts = dict(line.split(": ") for line in lines)
    assert counts["Customer"] == "30"
    assert int(counts["Interaction"]) > 30 * 5
    assert all(":" in line for line in lines)
    assert lines == sorted(lines)


@pytest.mark.parametrize("value", ["-5", "0", "many", "1.5"])
def test_seed_rejects_bad_counts_and_writes_nothing(data: Path, value: str) -> None:
    before = (data / "graph.db").read_bytes()
    code, out, err = run("seed", "--customers", value, "--data", str(data))
    assert code != 0
    assert "Traceback" not in out + err
    assert (data / "graph.db").read_bytes() == before
    code, out, _ = run("stats", "--data", str(data))
    assert "Customer" not in out


def test_commands_before_init_say_so(tmp_path: Path) -> None:
    for args in (("seed", "--customers", "5"), ("stats",), ("audit", "verify"),
                 ("erase", "c_x"), ("keys", "rotate")):
        code, _out, err = run(*args, "--data", str(tmp_path / "nothing"))
        assert code != 0, args
        assert "pacte init" in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "nothing").exists()


def test_unwritable_data_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run("init", "--data", str(blocker / "data"))
    assert code == 1 and err.startswith("error: cannot write to") and err.count("\n") == 1


def test_corrupt_or_foreign_database_is_one_clear_error(data: Path) -> None:
    graph = data / "graph.db"
    for name in ("graph.db-wal", "graph.db-shm"):
        (data / name).unlink(missing_ok=True)
    graph.write_bytes(b"this is not sqlite" * 100)
    code, out, err = run("stats", "--data", str(data))
    assert code == 1 and "not a pacte store" in err and "Traceback" not in out + err
    graph.unlink()
    db = sqlite3.connect(graph)
    db.execute("CREATE TABLE invoices (n INTEGER)")
    db.commit()
    db.close()
    code, _, err = run("stats", "--data", str(data))
    assert code == 1 and "not a pacte store" in err


def test_apikey_prints_the_key_alone_on_the_last_line(data: Path) -> None:
    code, out, err = run("apikey", "create", "--name", "crm", "--role", "app",
                         "--purpose", "service", "--purpose", "marketing", "--data", str(data))
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert key.startswith("pk_") and " " not in key
    code, out, _ = run("apikey", "list", "--data", str(data))
    assert "crm" in out and key not in out
    code, _, err = run("apikey", "create", "--name", "x", "--role", "wizard", "--data", str(data))
    assert code == 1 and "unknown role" in err
    code, _, err = run("apikey", "create", "--name", "x", "--role", "app", "--purpose", "tarot",
                       "--data", str(data))
    assert code == 1 and "unknown purpose" in err


def test_erase_prints_a_signed_receipt_and_verify_stays_valid(data: Path) -> None:
    assert run("seed", "--customers", "10", "--data", str(data))[0] == 0
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        cid = rt.operator_session("service").customers(first=1).items[0].id
    code, out, err = run("erase", cid, "--yes", "--data", str(data))
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["signature"] and cid not in out
    code, out, err = run("erase", cid, "--yes", "--data", str(data))
    assert code == 1
    code, out, _ = run("audit", "verify", "--data", str(data))
    assert code == 0, out
    code, out, _ = run("audit", "trace", "--customer", cid, "--data", str(data))
    assert code == 0 and "customer.erase" in out


def test_keys_rotate_keeps_data_readable(data: Path) -> None:
    assert run("seed", "--customers", "5", "--data", str(data))[0] == 0
    code, out, _ = run("keys", "rotate", "--data", str(data))
    assert code == 0 and "version 2" in out
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        views = rt.operator_session("service").customers(first=5).items
        assert all(str(v.fields["email"]).endswith("@example.com") for v in views)


def test_wrong_master_key_is_one_clear_error_and_changes_nothing(data: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    monkeypatch.setenv("PACTE_MASTER_KEY", "A" * 43 + "=")
    code, _out, err = run("stats", "--data", str(data))
    assert code == 1 and "master key" in err and err.count("\n") == 1
    after = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if not k.endswith(("-wal", "-shm"))} == {
        k: v for k, v in before.items() if not k.endswith(("-wal", "-shm"))}


def test_audit_verify_exit_codes(data: Path) -> None:
    assert run("seed", "--customers", "5", "--data", str(data))[0] == 0
    code, out, _ = run("audit", "verify", "--data", str(data))
    assert code == 0
    code, out, _ = run("audit", "verify", "--json", "--data", str(data))
    assert json.loads(out)["ok"] is True
    db = sqlite3.connect(data / "audit.db")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    assert tables
    (data / "audit.db").write_bytes(b"\x00" * 4096)
    for name in ("audit.db-wal", "audit.db-shm"):
        (data / name).unlink(missing_ok=True)
    code, out, err = run("audit", "verify", "--data", str(data))
    assert code == 2, (out, err)


def test_help_shows_examples() -> None:
    for args in (["init", "--help"], ["seed", "--help"], ["apikey", "create", "--help"],
                 ["erase", "--help"], ["audit", "verify", "--help"]):
        code, out, _ = run(*args)
        assert code == 0 and "Example" in out, args


def test_data_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTE_DATA", str(tmp_path / "envdata"))
    assert run("init")[0] == 0
    assert (tmp_path / "envdata" / "policy.toml").exists()
    monkeypatch.delenv("PACTE_DATA")
    monkeypatch.chdir(tmp_path)
    assert run("init")[0] == 0
    assert (tmp_path / "pacte-data" / "policy.toml").exists()
    assert os.environ.get("PACTE_DATA") is None


def test_init_and_every_command_follow_pacte_store(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("PACTE_STORE", str(elsewhere))
    path = tmp_path / "data"
    assert run("init", "--data", str(path))[0] == 0
    assert run("seed", "--customers", "5", "--data", str(path))[0] == 0
    # The graph went to the store named by the environment, and its URI (which could
    # carry a password) was not written into the data directory.
    assert elsewhere.exists()
    assert not (path / "graph.db").exists() and not (path / "store.uri").exists()
    code, out, _ = run("stats", "--data", str(path))
    assert code == 0 and "Customer" in out


def test_a_failed_init_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "data"
    code, _, err = run("init", "--store", "ftp://nowhere", "--data", str(path))
    assert code == 1 and "unsupported store URI" in err
    assert not path.exists() or list(path.iterdir()) == []
    assert run("init", "--data", str(path))[0] == 0


def test_audit_reports_for_auditors(data: Path) -> None:
    assert run("seed", "--customers", "8", "--data", str(data))[0] == 0
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        cid = rt.operator_session("service").customers(first=1).items[0].id
    code, out, _ = run("audit", "trace", "--customer", cid, "--data", str(data))
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and lines and all("seq" in e for e in lines)
    code, out, err = run("audit", "access-report", "--customer", cid, "--data", str(data))
    assert code == 0, err
    report = json.loads(out)
    assert report["uses"] and cid not in out
    code, out, _ = run("audit", "processing-record", "--data", str(data))
    assert code == 0 and "marketing.email" in out


def test_verify_against_an_exported_checkpoint_catches_a_rollback(data: Path,
                                                                  tmp_path: Path) -> None:
    assert run("seed", "--customers", "5", "--data", str(data))[0] == 0
    backup = {p.name: p.read_bytes() for p in data.iterdir() if p.name.startswith("audit.db")}
    assert run("stats", "--data", str(data))[0] == 0  # more entries after the backup
    cp = tmp_path / "checkpoint.json"
    code, out, _ = run("audit", "checkpoint", "--export", str(cp), "--data", str(data))
    assert code == 0 and cp.exists()
    assert run("audit", "verify", "--trusted", str(cp), "--data", str(data))[0] == 0
    for p in data.iterdir():  # roll the audit trail back to the older copy
        if p.name.startswith("audit.db"):
            p.unlink()
    for name, blob in backup.items():
        (data / name).write_bytes(blob)
    code, out, _ = run("audit", "verify", "--trusted", str(cp), "--data", str(data))
    assert code == 1, out


def _script(*args: str | bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The real `pacte` process: argv bytes reach it as a shell would pass them."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "pacte", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("argv", [
    ("erase", b"c_\xff"),                                  # not UTF-8
    ("audit", "checkpoint", "--export", "/nonexistent/x"),  # an unwritable file
    ("serve", "--port", "99999"),                           # no such port
    ("serve", "--port", "0"),
    ("demo", "--no-serve", "--port", "70000"),
])
def test_bad_arguments_are_one_line_not_a_traceback(data: Path, argv: tuple[str | bytes, ...]
                                                    ) -> None:
    done = _script(*argv, "--data", str(data), cwd=data.parent)
    err = done.stderr.decode(errors="replace")
    assert done.returncode != 0 and "Traceback" not in err, err
    assert err.count("\n") == 1 and err.startswith("error: "), err


def test_an_argument_that_is_not_utf8_through_the_runner(data: Path) -> None:
    # Past `main` (which refuses such argv whole, exit 2) the session refuses the id.
    code, _out, err = run("erase", "--yes", "--data", str(data), "c_\udcff")
    assert code == 1 and err == "error: an id is not valid text (it holds a lone surrogate)\n"


# -- what users of sqlite-utils and typer expect (issue #22) --------------------------


def test_help_shows_the_data_default_and_takes_h() -> None:
    code, out, _ = run("init", "-h")
    assert code == 0
    assert "[default: $PACTE_DATA, else ./pacte-data]" in _flat(out)
    code, out, _ = run("serve", "--help")
    assert "[default: 50000]" in _flat(out) and "--log-level" in out


def _flat(help_text: str) -> str:
    """Help text without the box drawing and line wrapping."""
    return " ".join(help_text.replace("│", " ").split())


def test_version() -> None:
    from pacte import __version__

    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"pacte {__version__}"


def test_erase_asks_first_and_tells_erased_from_unknown(data: Path) -> None:
    assert run("seed", "--customers", "3", "--data", str(data))[0] == 0
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        cid = rt.operator_session("service").customers(first=1).items[0].id
    result = runner.invoke(app, ["erase", cid, "--data", str(data)], input="n\n")
    assert result.exit_code == 1 and "cannot be undone" in result.stderr
    with Pacte.open(data) as rt:  # still there
        assert rt.operator_session("service").customer(cid) is not None
    result = runner.invoke(app, ["erase", cid, "--data", str(data)], input="y\n")
    assert result.exit_code == 0, result.stderr
    # (the runner echoes the typed answer into stdout; a terminal would not)
    assert json.loads(result.stdout[result.stdout.index("{"):])["signature"]
    code, _, err = run("erase", cid, "-y", "--data", str(data))
    assert code == 1 and f"{cid} was already erased" in err and "audit entry" in err
    assert err.count("\n") == 1
    code, _, err = run("erase", "c_000000000000", "--yes", "--data", str(data))
    assert code == 1 and err.strip() == "error: no customer c_000000000000"


def test_apikey_list_has_a_header_dates_and_json(data: Path) -> None:
    code, out, _ = run("apikey", "create", "--name", "crm", "--role", "app", "--purpose",
                       "service", "--data", str(data))
    assert code == 0
    key = out.strip().splitlines()[-1]
    _code, out, _ = run("apikey", "list", "--data", str(data))
    header, row = out.splitlines()[0], out.splitlines()[-1]
    assert header.split() == ["ID", "NAME", "ROLE", "PURPOSES", "STATE", "CREATED",
                              "LAST", "USED"]
    assert "crm" in row and row.endswith("never") and key not in out
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        rt.authenticate(key)
        rt.authenticate(key)  # a second use the same day writes nothing more
        today = rt.now().date().isoformat()
    _code, out, _ = run("apikey", "list", "--json", "--data", str(data))
    (listed,) = [p for p in json.loads(out) if p["name"] == "crm"]
    assert listed["last_used"] == today and listed["state"] == "active"
    assert listed["created"].startswith(today) and listed["purposes"] == ["service"]


def test_noting_a_key_use_never_undoes_a_revocation(data: Path) -> None:
    """The use is kept apart from the principal: a revocation written between the
    lookup and the note of use must stand."""
    from pacte.errors import Unauthenticated
    from pacte.runtime import Pacte

    with Pacte.open(data) as rt:
        principal, key = rt.create_principal(name="app", role="app", purposes=["service"])
        registry = rt._backend.principals
        real_note = registry._note_use

        def revoke_then_note(principal_id: str, now: int) -> None:
            rt.revoke_principal(principal.id)  # lands between lookup and note
            real_note(principal_id, now)

        registry._note_use = revoke_then_note  # type: ignore[method-assign]
        rt.authenticate(key)
        registry._note_use = real_note  # type: ignore[method-assign]
        with pytest.raises(Unauthenticated):
            rt.authenticate(key)


@pytest.mark.parametrize("args", [("stats",), ("purposes",)])
def test_printing_commands_take_json(data: Path, args: tuple[str, ...]) -> None:
    code, out, err = run(*args, "--json", "--data", str(data))
    assert code == 0, err
    assert isinstance(json.loads(out), dict)


def test_init_against_an_unreachable_store_fails_fast_and_leaves_nothing(
        tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = tmp_path / "d"
    code, _out, err = run("init", "--data", str(target), "--store", f"neo4j://127.0.0.1:{port}")
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("error: cannot reach the Neo4j store at neo4j://127.0.0.1:")
    assert not target.exists()
    code, _, err = run("init", "--data", str(target), "--store", "mysql://x/y")
    assert code == 1 and "unsupported store URI mysql://" in err and not target.exists()
