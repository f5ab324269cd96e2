"""Part 2 of scale-out: the audit trail in Neo4j with one hash chain per writer.

Many writers append at once and the whole verifies; a writer killed mid-append leaves
nothing that fails verification and loses no acknowledged entry; tampering with any
chain is caught and named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.audit.shared_trail import SharedTrail
from pacte.audit.shared_verify import verify_shared
from pacte.crypto import SigningKey
from pacte.errors import InputError, IntegrityError
from pacte.graph.neo4j_store import Neo4jStore
from tests.helpers import FakeClock
from tests.neo4j_fixture import clean_database
from tests.scale.conftest import rewrite_consistently

pytestmark = pytest.mark.neo4j
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(neo4j_uri: str) -> Iterator[Neo4jStore]:
    clean_database(neo4j_uri)
    s = Neo4jStore(neo4j_uri)
    yield s
    s.close()


@pytest.fixture
def signer() -> SigningKey:
    return SigningKey.generate()


def _record(n: int, subject: str | None = None) -> dict[str, object]:
    return {"action": "customer.read", "principal": "pr_x", "purpose": "service",
            "subjects": [subject] if subject else [], "fields": ["name"], "n_": n}


def _run(store: Neo4jStore, query: str, **params: object) -> None:
    store.run_write("test", lambda tx: tx.run(query, **params).consume())  # type: ignore[arg-type]


def test_writers_append_at_once_and_the_chains_verify_together(
        store: Neo4jStore, signer: SigningKey) -> None:
    clock = FakeClock()
    trails = [SharedTrail.open(store, signer=signer, checkpoint_every=7, now=clock)
              for _ in range(3)]

    def write(trail: SharedTrail, k: int) -> None:
        for i in range(40):
            trail.append_many([_record(i, f"s_{k}{i % 3}"), _record(i)])

    threads = [threading.Thread(target=write, args=(t, k)) for k, t in enumerate(trails)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in trails:
        t.close()
    report = verify_shared(store, public_key=signer.public_key)
    assert report.ok, report.lines()
    assert report.chains == 3 and report.entries == 3 * 81 and report.unsigned == 0
    # The later chains name the earlier ones as they found them.
    assert len(trails[0].entries(limit=1000)) == 3 * 81
    # The subject index, merged by time across chains.
    named = trails[2].entries(subject="s_10", limit=100)
    assert len(named) == 14 and all(e.chain == trails[1].chain for e in named)
    page = trails[0].entries(limit=100)
    rest = trails[0].entries(after=page[-1].cursor, limit=1000)
    assert len(page) + len(rest) == 3 * 81
    assert [e.cursor for e in page + rest] == sorted(e.cursor for e in page + rest)


def test_verify_pins_the_signing_key(store: Neo4jStore, signer: SigningKey) -> None:
    with SharedTrail.open(store, signer=signer) as trail:
        trail.append(_record(1))
    other = SigningKey.generate()
    report = verify_shared(store, public_key=other.public_key)
    assert not report.ok and "pinned" in (report.reason or "")


@pytest.mark.parametrize("attack", ["edit", "delete_middle", "delete_tail_signed",
                                    "swap_chains", "drop_chain", "forged_chain",
                                    "unsigned_chain", "swap_ords", "drop_newest_chain",
                                    "drop_subject_rows", "add_subject_row"])
def test_tampering_is_caught_and_named(store: Neo4jStore, signer: SigningKey,
                                       attack: str) -> None:
    first = SharedTrail.open(store, signer=signer, checkpoint_every=4)
    for i in range(10):
        first.append(_record(i, "s_a"))
    first.close()
    second = SharedTrail.open(store, signer=signer, checkpoint_every=4)
    for i in range(10):
        second.append(_record(i, "s_b"))
    second.close()
    assert verify_shared(store, public_key=signer.public_key).ok
    a, b = first.chain, second.chain
    if attack == "edit":
        _run(store, "MATCH (e:PacteAuditEntry {key: $k}) "
                    "SET e.body = replace(e.body, 'service', 'legal')", k=f"{a}/5")
        where = f"{a}/5"
    elif attack == "delete_middle":
        _run(store, "MATCH (e:PacteAuditEntry {key: $k}) DELETE e", k=f"{b}/3")
        where = f"{b}/3"
    elif attack == "delete_tail_signed":
        _run(store, "MATCH (e:PacteAuditEntry {chain: $c}) WHERE e.n >= 9 DELETE e", c=a)
        where = f"{a}/9"
    elif attack == "swap_chains":
        # Entry 5 of one chain put in place of entry 5 of the other.
        _run(store, "MATCH (x:PacteAuditEntry {key: $kx}), (y:PacteAuditEntry {key: $ky}) "
                    "SET x.body = y.body, x.hash = y.hash", kx=f"{a}/5", ky=f"{b}/5")
        where = f"{a}/5"
    elif attack == "drop_chain":
        # The first chain removed whole: the second named it when it opened.
        _run(store, "MATCH (n) WHERE (n:PacteAuditEntry OR n:PacteAuditCheckpoint "
                    "OR n:PacteAuditSubject OR n:PacteAuditChain) AND n.chain = $c DETACH DELETE n",
             c=a)
        where = f"{b}/0"
    elif attack == "unsigned_chain":
        # A whole chain written past the trail, hashes right, by someone without the
        # signing key: a read of s_a by pr_victim that never happened.
        _forge_chain(store, "w_forged", ord_=2, key_id=signer.key_id,
                     records=[{"action": "audit.chain.open", "ord": 2, "key_id": signer.key_id,
                               "chains": {a: 11, b: 11}},
                              {"action": "customer.read", "principal": "pr_victim",
                               "subjects": ["s_a"]}])
        where = "w_forged/0"
    elif attack == "swap_ords":
        # Every seq (and receipt audit_seq) would then point into the other chain.
        for c, o in ((a, 99), (b, 0), (a, 1)):  # one at a time: ord is unique
            _run(store, "MATCH (c:PacteAuditChain {chain: $c}) SET c.ord = $o", c=c, o=o)
        where = f"{min(a, b)}/0"
    elif attack == "drop_newest_chain":
        _run(store, "MATCH (n) WHERE (n:PacteAuditEntry OR n:PacteAuditCheckpoint "
                    "OR n:PacteAuditSubject OR n:PacteAuditChain) AND n.chain = $c DETACH DELETE n",
             c=b)
        where = "#1/0"  # by its ordinal: its id is gone with it
    elif attack == "drop_subject_rows":
        # s_b's uses gone from its Art. 15 report.
        _run(store, "MATCH (s:PacteAuditSubject {subject: 's_b'}) DELETE s")
        where = f"{b}/1"
    elif attack == "add_subject_row":
        _run(store, "CREATE (:PacteAuditSubject {subject: 's_z', chain: $c, n: 4, time: $t})",
             c=a, t=_time_of(store, f"{a}/4"))
        where = f"{a}/4"
    else:
        # Entries of a chain nobody opened (written past the trail's API).
        _run(store, "CREATE (:PacteAuditEntry {key: 'w_x/0', chain: 'w_x', n: 0, "
                    "time: '2026', body: '{}', hash: $h})", h=b"\x00" * 32)
        where = "w_x/0"
    report = verify_shared(store, public_key=signer.public_key)
    assert not report.ok and report.first_bad == where, report.lines()
    if attack == "drop_newest_chain":
        from pacte.audit.shared_trail import CHAIN_SPAN
        from pacte.trails import NeoTrail

        # What the API and the console show: the first seq of the chain that is gone.
        shown = NeoTrail(SharedTrail.open(store, signer=signer)).verify(
            public_key=signer.public_key, progress=None)
        assert not shown.ok and shown.first_bad == CHAIN_SPAN


def _time_of(store: Neo4jStore, key: str) -> str:
    rows = store.run_read("test", "MATCH (e:PacteAuditEntry {key: $k}) RETURN e.time", k=key)
    return str(rows[0][0])


def _forge_chain(store: Neo4jStore, chain: str, *, ord_: int, key_id: str,
                 records: list[dict[str, object]]) -> None:
    """What someone with write access to Neo4j (and not the signing key) can write."""
    from pacte.audit.canonical import canonical_bytes
    from pacte.audit.merkle import chained_leaf_hash
    from pacte.audit.shared_trail import _append_work, genesis

    time = "2026-01-01T00:00:00.000000Z"
    _run(store, "MATCH (m:PacteMeta {key: 'audit.chains'}) SET m.value = toString($n)",
         n=ord_ + 1)
    _run(store, "CREATE (:PacteAuditChain {chain: $c, opened: $t, key_id: $k, ord: $o})",
         c=chain, t=time, k=key_id, o=ord_)
    link, rows, subjects = genesis(chain), [], []
    for n, record in enumerate(records):
        body = canonical_bytes({**record, "chain": chain, "n": n, "time": time})
        link = chained_leaf_hash(link, body)
        rows.append({"key": f"{chain}/{n}", "n": n, "time": time, "body": body.decode(),
                     "hash": link})
        named = record.get("subjects")
        subjects += [{"subject": s, "n": n, "time": time}
                     for s in (named if isinstance(named, list) else [])]
    store.run_write("test", _append_work(chain, rows, subjects, []))


def test_chains_opened_at_once_get_distinct_ordinals(store: Neo4jStore,
                                                    signer: SigningKey) -> None:
    # The chain counter was read before its lock was taken: openings at once got the
    # same ordinal, so two chains shared one seq space.
    seqs: list[int] = []
    errors: list[BaseException] = []

    def open_chains() -> None:
        for _ in range(8):
            try:
                with SharedTrail.open(store, signer=signer) as trail:
                    seqs.append(trail.append(_record(0)).seq)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=open_chains) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(set(seqs)) == 32
    report = verify_shared(store, public_key=signer.public_key)
    assert report.ok and report.chains == 32, report.lines()


def test_records_are_checked_like_the_single_writer_trail(store: Neo4jStore,
                                                         signer: SigningKey) -> None:
    with SharedTrail.open(store, signer=signer) as trail:
        for bad in ({"chain": "x"}, {"n": 1}, {"time": "t"}, {"blob": b"key"},
                    {"subjects": "s_1"}):
            with pytest.raises(IntegrityError):
                trail.append(bad)
        assert trail.size() == 0  # a chain is opened by the first append that succeeds


CHILD = r"""
import sys
from pacte.audit.shared_trail import SharedTrail
from pacte.crypto import SigningKey
from pacte.graph.neo4j_store import Neo4jStore

store = Neo4jStore(sys.argv[1])
trail = SharedTrail.open(store, signer=SigningKey.load(sys.argv[2]), checkpoint_every=5)
trail.checkpoint()  # opens its chain
print("CHAIN", trail.chain, flush=True)
i = 0
while True:
    entry = trail.append_many([{"action": "write", "i": i, "subjects": ["s_k"]},
                               {"action": "write", "i": i + 1}])
    print("ACK", entry[-1].n, flush=True)
    i += 2
"""


def test_a_writer_killed_mid_append_leaves_a_trail_that_verifies(
        store: Neo4jStore, signer: SigningKey, neo4j_uri: str, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.key"
    key = SigningKey.create(key_file)
    survivor = SharedTrail.open(store, signer=key, checkpoint_every=5)
    child = subprocess.Popen([sys.executable, "-c", CHILD, neo4j_uri, str(key_file)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    chain = child.stdout.readline().split()[1]
    acknowledged = -1
    for line in child.stdout:
        acknowledged = int(line.split()[1])
        survivor.append(_record(acknowledged))  # another writer goes on meanwhile
        if acknowledged >= 41:
            break
    os.kill(child.pid, signal.SIGKILL)  # most likely in the middle of an append
    child.wait()
    survivor.close()
    report = verify_shared(store, public_key=key.public_key)
    assert report.ok, report.lines()
    held = [e for e in survivor.entries(limit=10_000) if e.chain == chain]
    # Every acknowledged entry is there, in order, and nothing half-written.
    assert [e.n for e in held] == list(range(len(held))) and len(held) > acknowledged
    assert len(held) % 2 == 1  # the opening entry, then whole pairs


def test_a_full_chain_is_signed_and_the_writer_goes_on_in_a_new_one(
        store: Neo4jStore, signer: SigningKey, monkeypatch: pytest.MonkeyPatch) -> None:
    from pacte.audit import shared_trail

    monkeypatch.setattr(shared_trail, "CHAIN_SPAN", 4)
    clock = FakeClock()
    with SharedTrail.open(store, signer=signer, now=clock) as trail:
        made = []
        for i in range(9):
            clock.advance(seconds=1)
            made += trail.append_many([_record(i, "s_full")])
    report = verify_shared(store, public_key=signer.public_key)
    assert report.ok and report.chains == 3 and report.unsigned == 0, report.lines()
    # seq = ord * span + n: distinct, and each leads back to its entry.
    assert len({e.seq for e in made}) == 9
    listed = trail.entries(subject="s_full", limit=100)
    assert [e.seq for e in listed] == [e.seq for e in made]
    assert [e.seq for e in trail.entries(subject="s_full", after_seq=made[3].seq)] == [
        e.seq for e in made[4:]]
    with pytest.raises(InputError):
        trail.entries(after_seq=10_000_000)


@pytest.mark.parametrize("attack", ["rewrite_consistently", "forged_signature",
                                    "swap_places"])
def test_what_only_a_checkpoint_or_a_place_shows_is_caught_and_named(
        store: Neo4jStore, signer: SigningKey, attack: str) -> None:
    with SharedTrail.open(store, signer=signer, checkpoint_every=5) as trail:
        for i in range(12):
            trail.append(_record(i, "s_a"))
    chain = trail.chain
    assert chain is not None and verify_shared(store, public_key=signer.public_key).ok
    if attack == "rewrite_consistently":
        # Every link holds; the checkpoint signed at 10 does not. Named: the first entry
        # the last good checkpoint (at 5) does not vouch for, as verify names it on
        # audit.db (somewhere in [5, 10)).
        rewrite_consistently(store, chain, 7)
        where = f"{chain}/5"
    elif attack == "forged_signature":
        _run(store, "MATCH (c:PacteAuditCheckpoint {chain: $c, size: 10}) "
                    "SET c.signature = $s", c=chain, s=b"\x00" * 64)
        where = f"{chain}/9"
    else:
        # Two entries' bodies and hashes exchanged: each names its own place.
        _run(store, "MATCH (x:PacteAuditEntry {key: $kx}), (y:PacteAuditEntry {key: $ky}) "
                    "WITH x, y, x.body AS b, x.hash AS h "
                    "SET x.body = y.body, x.hash = y.hash, y.body = b, y.hash = h",
             kx=f"{chain}/3", ky=f"{chain}/4")
        where = f"{chain}/3"
    report = verify_shared(store, public_key=signer.public_key)
    assert not report.ok and report.first_bad == where, report.lines()
