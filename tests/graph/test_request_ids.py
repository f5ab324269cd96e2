"""Request ids come from a batch drawn from the OS: each is still 128 random bits, never
handed out twice, in this process or a forked one."""

from __future__ import annotations

import os
import re

import pacte.graph.session as session_module


def test_request_ids_are_distinct_across_batches() -> None:
    ids = [session_module._request_id() for _ in range(3 * session_module._REQUEST_ID_BATCH)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_child_does_not_reuse_the_parents_ids() -> None:
    session_module._REQUEST_IDS.clear()
    session_module._request_id()  # the parent now holds a batch
    pending = set(session_module._REQUEST_IDS)
    assert pending
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave at once
        os.close(read)
        os.write(write, session_module._request_id().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read()
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child not in pending
