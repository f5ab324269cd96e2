"""The tamper matrix: every table and column of the trail, every way to tamper with it.

For each case the stored trail is edited as an attacker with write access would, and
`verify` (and `pacte audit verify`, exit 1) must name the table, the entry, block or
checkpoint, and the kind of damage. The untouched trail verifies; verifying never
repairs anything. Runs on every trail backend (`backend` fixture, conftest.BACKENDS).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pacte.audit import AuditTrail, Checkpoint, verify
from pacte.audit.verify import (
    BAD_SIGNATURE,
    INVENTED,
    MISSING,
    MODIFIED,
    NOT_EXTENSION,
    REORDERED,
    TRUNCATED,
    UNTRUSTED_KEY,
)
from pacte.crypto.signing import SigningKey

from .conftest import Clock, SQLiteBackend, record

SIGNER = SigningKey.generate()
OTHER = SigningKey.generate()
N = 2300  # two whole subject-index blocks of 1,024 and a tail
K = 700  # an entry inside the signed range [500, 1000)
Edit = tuple[str, tuple[object, ...]]


def _fill(trail: AuditTrail, start: int, stop: int) -> None:
    for i in range(start, stop):
        trail.append(record(i, subjects=[f"s_{i % 7:02d}"] + (["s_x"] if i % 11 == 0 else [])))
        if i + 1 == 2100:
            trail.checkpoint(index=True)


def _build(backend: SQLiteBackend, signer: SigningKey, n: int = N) -> dict[str, Any]:
    trail = backend.create(signer=signer, every=500, clock=Clock())
    _fill(trail, 0, n)
    index_cp = trail.checkpoint(index=True)
    trail.close()  # signs the plain checkpoint at N
    ro = backend.open()
    plain = ro.latest_checkpoint()
    ro.close()
    assert plain is not None
    return {"plain": plain, "index": index_cp, "saved": backend.save()}


@pytest.fixture
def built(backend: SQLiteBackend) -> dict[str, Any]:
    return _build(backend, SIGNER)


def _body(backend: SQLiteBackend, seq: int) -> bytes:
    import sqlite3

    db = sqlite3.connect(backend.path)
    body = db.execute("SELECT body FROM entries WHERE seq = ?", (seq,)).fetchone()[0]
    db.close()
    return bytes(body)


def _forged_body(backend: SQLiteBackend, seq: int) -> bytes:
    doc = json.loads(_body(backend, seq))
    doc["purpose"] = "marketing"  # a plausible lie, still canonical JSON
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _resign(backend: SQLiteBackend, built: dict[str, Any]) -> list[Edit]:
    """Rewrite the whole trail with one entry changed, signed by another key."""
    backend.restore(b"")
    backend.path.unlink()
    trail = backend.create(signer=OTHER, every=500, clock=Clock())
    _fill(trail, 0, K)
    trail.append({**record(K, subjects=["s_00"]), "outcome": "denied"})
    _fill(trail, K + 1, N)
    trail.checkpoint(index=True)
    trail.close()
    return []


def _rollback(backend: SQLiteBackend, built: dict[str, Any]) -> list[Edit]:
    """An older copy of the trail put back (it was whole then: it verifies on its own)."""
    backend.restore(b"")
    backend.path.unlink()
    older = _build(backend, SIGNER, n=1200)
    backend.restore(older["saved"])
    return []


# (table, how, the edits or a function making them, trusted: "plain" / "index" / None,
#  (reason, table named, first bad seq, block))
CASES: list[tuple[str, str, Any, str | None,
                  tuple[str, str, int | None, int | None] | None]] = [
    # entries: every column
    ("entries", "modify body", lambda b, _: [("UPDATE entries SET body = ? WHERE seq = ?",
                                              (_forged_body(b, K), K))], "plain",
     (MODIFIED, "entries", K, None)),
    ("entries", "modify entry_hash", [("UPDATE entries SET entry_hash = zeroblob(32) "
                                       "WHERE seq = ?", (K,))], "plain",
     (MODIFIED, "entries", K, None)),
    # time, principal and purpose are computed from the body (generated columns): SQLite
    # refuses to write them, so an attacker rewrites their definition instead.
    *[("entries", f"modify {column}", [
        ("PRAGMA writable_schema = ON", ()),
        ("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE name = 'entries'",
         (f"'$.{column}')", "'$.request_id')")),
        ("PRAGMA schema_version = 99", ())], "plain", (MODIFIED, "sqlite_master", None, None))
      for column in ("time", "principal", "purpose")],
    ("entries", "modify a column's value", [
        ("UPDATE entries SET time = '2020-01-01T00:00:00.000000Z' WHERE seq = ?", (K,))],
     "plain", None),
    ("entries", "modify seq", [("UPDATE entries SET seq = 99999 WHERE seq = ?", (K,))],
     "plain", (MISSING, "entries", K, None)),
    ("entries", "delete", [("DELETE FROM entries WHERE seq = ?", (K,))], "plain",
     (MISSING, "entries", K, None)),
    ("entries", "insert", lambda b, _: [
        ("UPDATE entries SET seq = -seq - 1 WHERE seq >= ?", (K,)),
        ("UPDATE entries SET seq = -seq WHERE seq < 0", ()),
        ("INSERT INTO entries (seq, body, entry_hash) SELECT ?, ?, entry_hash FROM entries "
         "WHERE seq = ?",
         (K, _forged_body(b, K), K + 1))], "plain", (MODIFIED, "entries", K, None)),
    ("entries", "insert before the first", [
        ("INSERT INTO entries (seq, body, entry_hash) SELECT -1, body, entry_hash "
         "FROM entries WHERE seq = 0", ())], "plain", (INVENTED, "entries", None, None)),
    ("entries", "duplicate", [("INSERT INTO entries (seq, body, entry_hash) SELECT ?, body, "
                               "entry_hash FROM entries WHERE seq = ?", (N, K))], "plain",
     (REORDERED, "entries", N, None)),
    ("entries", "reorder", [("UPDATE entries SET seq = -1 WHERE seq = ?", (K,)),
                            ("UPDATE entries SET seq = ? WHERE seq = ?", (K, K + 1)),
                            ("UPDATE entries SET seq = ? WHERE seq = -1", (K + 1,))], "plain",
     (REORDERED, "entries", K, None)),
    ("entries", "truncate", [("DELETE FROM entries WHERE seq >= 2000", ())], "plain",
     (TRUNCATED, "entries", 2000, None)),
    # subject_blocks: every column
    ("subject_blocks", "modify seqs", [("UPDATE subject_blocks SET seqs = '1029' "
                                        "WHERE block = 1 AND subject = 's_03'", ())], "plain",
     (MODIFIED, "subject_blocks", None, 1)),
    ("subject_blocks", "modify subject", [("UPDATE subject_blocks SET subject = 's_99' "
                                           "WHERE block = 1 AND subject = 's_03'", ())],
     "plain", (MISSING, "subject_blocks", None, 1)),
    ("subject_blocks", "modify block", [("UPDATE subject_blocks SET block = 0 "
                                         "WHERE block = 1 AND subject = 's_x'", ()),
                                        ("DELETE FROM subject_blocks "
                                         "WHERE block = 0 AND subject = 's_x'", ())][::-1],
     "plain", (MODIFIED, "subject_blocks", None, 0)),
    ("subject_blocks", "delete", [("DELETE FROM subject_blocks "
                                   "WHERE block = 1 AND subject = 's_03'", ())], "plain",
     (MISSING, "subject_blocks", None, 1)),
    ("subject_blocks", "insert", [("INSERT INTO subject_blocks VALUES (1, 's_zz', '1030')",
                                   ())], "plain", (INVENTED, "subject_blocks", None, 1)),
    ("subject_blocks", "insert ahead", [("INSERT INTO subject_blocks VALUES "
                                         "(2, 's_03', '2050')", ())], "plain",
     (INVENTED, "subject_blocks", None, 2)),
    ("subject_blocks", "duplicate", [("INSERT INTO subject_blocks SELECT block, 's_03b', seqs"
                                      " FROM subject_blocks WHERE block = 1 AND "
                                      "subject = 's_03'", ())], "plain",
     (INVENTED, "subject_blocks", None, 1)),
    ("subject_blocks", "reorder", [
        ("UPDATE subject_blocks SET seqs = (SELECT seqs FROM subject_blocks WHERE block = 1 "
         "AND subject = 's_04') WHERE block = 1 AND subject = 's_03'", ())], "plain",
     (MODIFIED, "subject_blocks", None, 1)),
    ("subject_blocks", "truncate", [("DELETE FROM subject_blocks WHERE block >= 1", ())],
     "plain", (MISSING, "subject_blocks", None, 1)),
    # checkpoints: every column
    *[("checkpoints", f"modify {column}", [(f"UPDATE checkpoints SET {column} = {value} "
                                            "WHERE size = 1000", ())], "plain",
       (reason, "checkpoints", first_bad, None))
      for column, value, reason, first_bad in (
          ("size", "1001", BAD_SIGNATURE, None),
          ("root", "zeroblob(32)", BAD_SIGNATURE, None),
          ("head", "zeroblob(32)", BAD_SIGNATURE, None),
          ("time", "'2020-01-01T00:00:00.000000Z'", BAD_SIGNATURE, None),
          ("key_id", "'0000000000000000'", BAD_SIGNATURE, None),
          ("public_key", "zeroblob(32)", UNTRUSTED_KEY, None),
          ("signature", "zeroblob(64)", BAD_SIGNATURE, None),
          ("frontier", "zeroblob(32)", MODIFIED, None),
          ("prev", "NULL", BAD_SIGNATURE, None),
          ("index_head", "zeroblob(32)", BAD_SIGNATURE, None),
          ("index_head", "NULL", BAD_SIGNATURE, None))],
    ("checkpoints", "delete", [("DELETE FROM checkpoints WHERE size = 1000", ())], "plain",
     (MISSING, "checkpoints", None, None)),
    ("checkpoints", "insert", [("INSERT INTO checkpoints SELECT 1200, root, head, time, "
                                "key_id, public_key, signature, frontier, prev, index_head FROM "
                                "checkpoints WHERE size = 1000", ())], "plain",
     (BAD_SIGNATURE, "checkpoints", None, None)),
    ("checkpoints", "duplicate", [("INSERT INTO checkpoints SELECT 2500, root, head, time, "
                                   "key_id, public_key, signature, frontier, prev, index_head FROM "
                                   "checkpoints WHERE size = 1000", ())], "plain",
     (BAD_SIGNATURE, "checkpoints", None, None)),
    ("checkpoints", "reorder", [("UPDATE checkpoints SET size = -1 WHERE size = 500", ()),
                                ("UPDATE checkpoints SET size = 500 WHERE size = 1000", ()),
                                ("UPDATE checkpoints SET size = 1000 WHERE size = -1", ())],
     "plain", (BAD_SIGNATURE, "checkpoints", None, None)),
    ("checkpoints", "truncate", [("DELETE FROM checkpoints WHERE size >= 2000", ())],
     "plain", (MISSING, "checkpoints", None, None)),
    # index_checkpoints: every column
    *[("index_checkpoints", f"modify {column}", [(f"UPDATE index_checkpoints SET {column} = "
                                                  f"{value} WHERE size = 2100", ())], "plain",
       (reason, "index_checkpoints", None, None))
      for column, value, reason in (
          ("size", "2101", BAD_SIGNATURE),
          ("root", "zeroblob(32)", BAD_SIGNATURE),
          ("head", "zeroblob(32)", BAD_SIGNATURE),
          ("time", "'2020-01-01T00:00:00.000000Z'", BAD_SIGNATURE),
          ("key_id", "'0000000000000000'", BAD_SIGNATURE),
          ("public_key", "zeroblob(32)", UNTRUSTED_KEY),
          ("signature", "zeroblob(64)", BAD_SIGNATURE),
          ("index_root", "zeroblob(32)", BAD_SIGNATURE),
          ("subjects", "3", BAD_SIGNATURE),
          ("prev", "5", BAD_SIGNATURE))],
    ("index_checkpoints", "delete", [("DELETE FROM index_checkpoints WHERE size = 2100", ())],
     "plain", (MISSING, "index_checkpoints", None, None)),
    ("index_checkpoints", "insert", [("INSERT INTO index_checkpoints SELECT 1500, root, head,"
                                      " time, key_id, public_key, signature, index_root, "
                                      "subjects, prev FROM index_checkpoints WHERE size = "
                                      "2100", ())], "plain",
     (BAD_SIGNATURE, "index_checkpoints", None, None)),
    ("index_checkpoints", "reorder", [
        ("UPDATE index_checkpoints SET size = -1 WHERE size = 2100", ()),
        ("UPDATE index_checkpoints SET size = 2100 WHERE size = 2300", ()),
        ("UPDATE index_checkpoints SET size = 2300 WHERE size = -1", ())], "plain",
     (BAD_SIGNATURE, "index_checkpoints", None, None)),
    ("index_checkpoints", "truncate", [("DELETE FROM index_checkpoints WHERE size = 2300",
                                        ())], "index",
     (MISSING, "index_checkpoints", None, None)),
    # meta: every row
    ("meta", "modify schema_version", [("UPDATE meta SET value = '2' "
                                        "WHERE key = 'schema_version'", ())], "plain",
     (MODIFIED, "meta", None, None)),
    ("meta", "modify subject_blocks_indexed", [("UPDATE meta SET value = '1' WHERE key = "
                                                "'subject_blocks_indexed'", ())], "plain",
     (MODIFIED, "meta", None, None)),
    ("meta", "modify subject_blocks_head", [("UPDATE meta SET value = ? WHERE key = "
                                             "'subject_blocks_head'", ("00" * 32,))], "plain",
     (MODIFIED, "meta", None, None)),
    ("meta", "delete", [("DELETE FROM meta WHERE key = 'subject_blocks_indexed'", ())],
     "plain", (MISSING, "meta", None, None)),
    ("meta", "insert", [("INSERT INTO meta VALUES ('created', '2020-01-01')", ())], "plain",
     (INVENTED, "meta", None, None)),
    ("meta", "duplicate", [("INSERT INTO meta SELECT 'schema', value FROM meta "
                            "WHERE key = 'schema_version'", ())], "plain",
     (INVENTED, "meta", None, None)),
    ("meta", "reorder", [("UPDATE meta SET key = 'x' WHERE key = 'schema_version'", ()),
                         ("UPDATE meta SET key = 'schema_version' "
                          "WHERE key = 'subject_blocks_indexed'", ()),
                         ("UPDATE meta SET key = 'subject_blocks_indexed' WHERE key = 'x'",
                          ())], "plain", (MODIFIED, "meta", None, None)),
    ("meta", "truncate", [("DELETE FROM meta", ())], "plain", (MISSING, "meta", None, None)),
    # the file's schema: what SQLite runs besides the tables
    ("schema", "insert a trigger", [("CREATE TRIGGER hide AFTER INSERT ON entries BEGIN "
                                     "DELETE FROM subject_blocks WHERE 0; END", ())], "plain",
     (INVENTED, "sqlite_master", None, None)),
    ("schema", "insert an index", [("CREATE INDEX by_time ON entries (time)", ())], "plain",
     (INVENTED, "sqlite_master", None, None)),
    # the whole trail
    ("trail", "roll back to an older copy", _rollback, "plain",
     (NOT_EXTENSION, "entries", 1200, None)),
    ("trail", "rewrite and re-sign with another key", _resign, None,
     (UNTRUSTED_KEY, "checkpoints", None, None)),
]


def _trusted(built: dict[str, Any], which: str | None) -> Checkpoint | None:
    return None if which is None else built[which]


def _run_verify(backend: SQLiteBackend, trusted: Checkpoint | None) -> Any:
    trail = backend.open()
    try:
        return verify(trail, trusted=trusted, public_key=SIGNER.public_key)
    finally:
        trail.close()


def _cli(backend: SQLiteBackend, tmp: Path, trusted: Checkpoint | None) -> tuple[int, str]:
    from pacte.cli import app

    args = ["audit", "verify", "--data", str(backend.path.parent),
            "--key", hashlib.sha256(SIGNER.public_key).hexdigest()]
    if trusted is not None:
        path = tmp / "trusted.json"
        path.write_text(json.dumps(trusted.to_json()), encoding="utf-8")
        args += ["--trusted", str(path)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


@pytest.mark.parametrize(("table", "how", "edits", "which", "expected"), CASES,
                         ids=[f"{c[0]}-{c[1]}".replace(" ", "_") for c in CASES])
def test_every_tampering_is_detected_and_named(
        backend: SQLiteBackend, built: dict[str, Any], tmp_path: Path, table: str, how: str,
        edits: Any, which: str | None,
        expected: tuple[str, str, int | None, int | None] | None) -> None:
    trusted = _trusted(built, which)
    assert _run_verify(backend, trusted).ok  # untouched, it verifies
    statements = edits(backend, built) if callable(edits) else edits
    if expected is None:  # the store itself refuses the edit
        with pytest.raises(sqlite3.OperationalError, match="generated column"):
            backend.tamper(*statements)
        assert _run_verify(backend, trusted).ok
        return
    backend.tamper(*statements)
    before = backend.save()
    report = _run_verify(backend, trusted)
    assert (report.ok, report.reason, report.table, report.first_bad, report.block) == (
        False, *expected), report.detail
    assert report.detail and (table in report.lines()[-2] or table in report.detail
                              or table in ("schema", "trail"))
    code, out = _cli(backend, tmp_path, trusted)
    assert code == 1 and "Audit trail is INVALID" in out, out
    # Verifying repairs nothing: the file is as the attacker left it, and still fails.
    assert backend.save() == before
    assert not _run_verify(backend, trusted).ok


def test_the_untouched_trail_verifies_from_the_cli_with_the_key_or_its_fingerprint(
        backend: SQLiteBackend, built: dict[str, Any], tmp_path: Path) -> None:
    code, out = _cli(backend, tmp_path, built["plain"])
    assert code == 0 and out.rstrip().endswith("Audit trail is VALID"), out
    report = _run_verify(backend, built["index"])
    assert report.ok and report.checkpoints_valid == report.checkpoints_total == 5
    key = base64.b64encode(SIGNER.public_key).decode()
    trail = backend.open()
    assert verify(trail, key=key).ok
    assert verify(trail, key=hashlib.sha256(SIGNER.public_key).hexdigest()).ok
    wrong = verify(trail, key=hashlib.sha256(OTHER.public_key).hexdigest())
    assert (wrong.ok, wrong.reason) == (False, UNTRUSTED_KEY)
    trail.close()


def test_an_append_after_tampering_repairs_nothing(backend: SQLiteBackend,
                                                  built: dict[str, Any]) -> None:
    backend.tamper(("DELETE FROM subject_blocks WHERE block = 1 AND subject = 's_03'", ()))
    trail = AuditTrail.open(backend.path, signer=SIGNER, checkpoint_every=500,
                            now=Clock())
    _fill(trail, N, 3100)  # completes block 2: the index is written on, not rewritten
    trail.close()
    report = _run_verify(backend, None)
    assert (report.reason, report.table, report.block) == (MISSING, "subject_blocks", 1)



@pytest.mark.parametrize("subjects", [["s_a]b"], ["s_[x]", "s_y"], ['s_"q"'], ["s_{"], [],
                                      ["s_é"], ["s_back\\slash"], ["s_a", "s_a"]])
def test_subjects_with_odd_characters_are_indexed_and_verified(
        backend: SQLiteBackend, subjects: list[str]) -> None:
    """The fast reading of subjects falls back to a full parse whenever it must."""
    trail = backend.create(signer=SIGNER, every=500, clock=Clock())
    for i in range(1030):
        trail.append({**record(i, subjects=subjects if i % 3 else ["s_plain"]),
                      "extra": {"subjects": ["s_decoy"]} if i % 7 == 0 else None})
    trail.checkpoint(index=True)
    trail.close()
    assert _run_verify(backend, None).ok
    backend.tamper(("DELETE FROM subject_blocks WHERE subject = 's_plain'", ()))
    report = _run_verify(backend, None)
    assert (report.reason, report.table, report.block) == (MISSING, "subject_blocks", 0)
