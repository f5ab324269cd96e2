"""Counts of what a seeding run produced, for progress lines and benchmarks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pacte.graph.store import WriteBatch

__all__ = ["SeedStats"]


@dataclass(slots=True)
class SeedStats:
    """Add each batch as it goes by: `stats.add(batch)`; nothing of the batch is kept."""

    batches: int = 0
    customers: int = 0
    products: int = 0
    interactions: int = 0
    devices: int = 0
    nodes: int = 0
    edges: int = 0
    purchases: int = 0
    reviews: int = 0
    referrals: int = 0
    consents_granted: int = 0
    consents_withdrawn: int = 0

    def add(self, batch: WriteBatch) -> None:
        self.batches += 1
        self.nodes += len(batch.nodes)
        self.edges += len(batch.edges)
        for node in batch.nodes:
            kind = node.kind
            if kind == "Interaction":
                self.interactions += 1
            elif kind == "Customer":
                self.customers += 1
            elif kind == "Device":
                self.devices += 1
            elif kind == "Product":
                self.products += 1
        for edge in batch.edges:
            t = edge.type
            if t == "BOUGHT":
                self.purchases += 1
            elif t == "REVIEWED":
                self.reviews += 1
            elif t == "REFERRED":
                self.referrals += 1
            elif t == "CONSENTED":
                if edge.props.get("status") == "withdrawn":
                    self.consents_withdrawn += 1
                else:
                    self.consents_granted += 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
