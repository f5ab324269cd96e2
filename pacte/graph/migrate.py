"""Copying a graph between stores: ciphertext as is, resumable, verified.

The keys and the trail move too when the target is Neo4j (pacte.admin.migrate_store,
pacte.crypto.vault_copy, pacte.graph.migrate_trail). The copy is made
of idempotent upserts in batches, and the target records how far it got, so an
interrupted migration resumes where it stopped. At the end both sides are compared
by counts and by an order-independent checksum of every node, edge and index entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pacte.errors import IntegrityError
from pacte.graph.store import Edge, IndexEntry, Node, Store, WriteBatch, encode_props

__all__ = ["MigrationReport", "checksum", "migrate"]

_PHASES = ("nodes", "edges", "index")
_MOD = 2**256


@dataclass
class MigrationReport:
    source: str
    target: str
    copied: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    checksum: str = ""
    # Moved beside a Neo4j target (pacte.admin.migrate_store): data keys copied from
    # keys.db, and the audit trail's entries now in the shared trail (None: not moved).
    keys: int | None = None
    trail: int | None = None
    # Customers read (decrypted) through a runtime attached to the target, at the end.
    decrypted: int | None = None


def _digest(item: Node | Edge | IndexEntry) -> int:
    if isinstance(item, Node):
        text = f"N\x00{item.id}\x00{item.kind}\x00{item.owner}\x00{encode_props(item.props)}"
    elif isinstance(item, Edge):
        text = (f"E\x00{item.id}\x00{item.type}\x00{item.src}\x00{item.dst}\x00{item.at}\x00"
                f"{encode_props(item.props)}")
    else:
        text = f"I\x00{item.name}\x00{item.token.hex()}\x00{item.node_id}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")


def _key(item: Node | Edge | IndexEntry) -> str:
    if isinstance(item, IndexEntry):
        return f"{item.name}\x00{item.token.hex()}\x00{item.node_id}"
    return item.id


def _batches(store: Store, phase: str, size: int) -> Iterator[Sequence[Node | Edge | IndexEntry]]:
    if phase == "nodes":
        yield from store.iter_nodes(batch=size)
    elif phase == "edges":
        yield from store.iter_edges(batch=size)
    else:
        yield from store.iter_index(batch=size)


def checksum(store: Store, *, batch: int = 2000) -> tuple[dict[str, int], str]:
    """Counts per phase and one checksum over everything, independent of order."""
    counts: dict[str, int] = {}
    total = 0
    for phase in _PHASES:
        n = 0
        for items in _batches(store, phase, batch):
            n += len(items)
            for item in items:
                total = (total + _digest(item)) % _MOD
        counts[phase] = n
    return counts, f"{total:064x}"


def migrate(
    source: Store,
    target: Store,
    *,
    batch: int = 1000,
    progress: Callable[[str, int], object] | None = None,
) -> MigrationReport:
    """Copy every node, edge and index entry of `source` into `target`, then verify.

    Re-running after an interruption skips what the target already confirmed (its
    `migrate.*` meta keys), so no batch is written twice. Raises IntegrityError when
    the copy does not match the source.
    """
    report = MigrationReport(source=source.uri, target=target.uri)
    tag = hashlib.sha256(source.uri.encode("utf-8")).hexdigest()[:12]
    for phase in _PHASES:
        mark = f"migrate.{tag}.{phase}"
        done = int(target.get_meta(mark) or 0)
        copied = skipped = 0
        for items in _batches(source, phase, batch):
            if skipped + len(items) <= done:
                skipped += len(items)
                continue
            wb = WriteBatch()
            for item in items:
                if isinstance(item, Node):
                    wb.nodes.append(item)
                elif isinstance(item, Edge):
                    wb.edges.append(item)
                else:
                    wb.index.append(item)
            target.write(wb)
            copied += len(items)
            target.set_meta(mark, str(skipped + copied))
            if progress is not None:
                progress(phase, skipped + copied)
        report.copied[phase] = copied
        report.skipped[phase] = skipped
    src_counts, src_sum = checksum(source, batch=batch)
    dst_counts, dst_sum = checksum(target, batch=batch)
    report.counts = src_counts
    report.checksum = src_sum
    if src_counts != dst_counts or src_sum != dst_sum:
        raise IntegrityError(
            f"migration check failed: source has {src_counts}, target has {dst_counts}"
            + ("" if src_counts != dst_counts else " (same counts, different checksums)"))
    for phase in _PHASES:
        target.set_meta(f"migrate.{tag}.{phase}", "0")
    return report
