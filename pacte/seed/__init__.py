"""Synthetic, reproducible customer data, as plaintext write batches.

`generate(customers, seed=..., now=...)` yields `WriteBatch`es of plaintext nodes
and edges: the product catalogue first, then customers with their interactions on
every channel, devices, consents and referrals. Personal values are plain `str`;
sealing them and computing blind-index entries is the caller's job (the session's
`ingest`), so nothing here ever reaches a store unencrypted.
"""

from __future__ import annotations

from pacte.seed.consents import CONSENT_PURPOSES
from pacte.seed.generator import generate
from pacte.seed.stats import SeedStats

__all__ = ["CONSENT_PURPOSES", "SeedStats", "generate"]
