"""Helpers for the ingestion tests: a graph digest that ignores ciphertext nonces."""

from __future__ import annotations

import hashlib
import json

from pacte.graph.model import NODE_KINDS
from pacte.runtime import Pacte


def graph_digest(rt: Pacte) -> tuple[dict[str, int], str]:
    """Counts per kind and one order-independent digest of every node (personal fields
    decrypted, so two runs with fresh nonces compare equal), edge and index entry."""
    items: list[str] = []
    for nodes in rt._backend.store.iter_nodes():
        for n in nodes:
            names = [f.name for f in NODE_KINDS[n.kind].fields] if n.kind in NODE_KINDS else []
            props = rt._backend.codec.open(n, names) if n.owner else dict(n.props)
            items.append(json.dumps(["N", n.kind, n.id, n.owner, props], sort_keys=True,
                                    default=str))
    for edges in rt._backend.store.iter_edges():
        items.extend(json.dumps(["E", e.type, e.id, e.src, e.dst, e.at, dict(e.props)],
                                sort_keys=True, default=str) for e in edges)
    for entries in rt._backend.store.iter_index():
        items.extend(f"I {i.name} {i.token.hex()} {i.node_id}" for i in entries)
    counts = {**rt._backend.store.count_nodes(), **rt._backend.store.count_edges()}
    return counts, hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()
