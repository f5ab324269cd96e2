"""One event id, one interaction, even from two processes at once (issue 14, item 6).

Two handles on one data directory (two store connections, as two server processes
have) record the same event id in two threads. A barrier holds both after their
lookup found nothing, so both go on to write: exactly the race the lookup alone lost.
The store's unique event index refuses the second write, and its request answers with
the first record, as a replay does.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pacte.graph.codec import EVENT_INDEX
from pacte.graph.session import Session
from pacte.graph.store import Store
from tests.helpers import audit_mark, audit_since, build_world


def _hold_after_first_lookup(store: Store, barrier: threading.Barrier) -> None:
    real = store.lookup
    held = threading.Event()

    def lookup(name: str, token: bytes) -> list[str]:
        found = real(name, token)
        if name == EVENT_INDEX and not held.is_set():
            held.set()
            barrier.wait(timeout=60)
        return found

    store.lookup = lookup  # type: ignore[method-assign]


def test_the_same_event_id_from_two_handles_at_once_is_stored_once(
        tmp_path: Path, store_uri: str | None) -> None:
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["granted"]
    second = world.another()
    handles = [world.rt, second]
    barrier = threading.Barrier(len(handles))
    for rt in handles:
        _hold_after_first_lookup(rt._backend.store, barrier)
    sessions: list[Session] = [rt.operator_session("service") for rt in handles]
    mark = audit_mark(world.rt)

    def record(session: Session) -> str:
        return session.record_interaction(customer_id=cid, channel="web", kind="visit",
                                          event_id="ev-race", summary="one visit").id
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            ids = list(pool.map(record, sessions))
        # Both requests answer with the one interaction that was stored.
        assert ids[0] == ids[1]
        from pacte.graph.codec import event_token

        assert world.rt._backend.store.lookup(EVENT_INDEX, event_token("ev-race")) == [ids[0]]
        assert world.rt._backend.store.owned_by(cid).count(ids[0]) == 1
        had = [e.dst for e in world.rt._backend.store.edges(cid, "HAD")]
        assert had.count(ids[0]) == 1
        assert len(world.rt._backend.store.owned_by(cid)) == 1 + len(had)
        # The loser's attempt is on record, then its answer as a duplicate.
        outcomes = sorted(e.record["outcome"] for e in audit_since(world.rt, mark)
                          if e.record["action"] == "interaction.write")
        assert outcomes == ["duplicate", "failed", "ok", "ok"]
    finally:
        second.close()
        world.rt.close()
