"""Shorter garbage-collector pauses for a serving process.

CPython's collector is generational: the young objects a request allocates (dicts,
lists, frames of the response) are swept cheaply, but every so often a full
collection walks every container object alive, and a server holds hundreds of
thousands of them from startup alone (the schema, strawberry's and graphql-core's
types, the policy, the caches). Measured on the customer-360 (1,000 customers,
SQLite), a full collection took 35-45 ms, about once every thousand requests: a
pause each request in flight at that moment pays, which is the p99.

`freeze_startup_heap` is called once the app is built, just before serving: a last
collection, then `gc.freeze()` moves everything alive into the permanent generation,
which collections no longer walk. Full collections then took about 3 ms, and the
collector's share of a request fell from about 0.10 to 0.07 ms. Nothing changes for
garbage: frozen objects are still freed when their last reference goes; only cycles
among them would stay (startup objects are not garbage).

The thresholds are left at CPython's defaults: a larger first generation cut a little
more collector time (0.06 ms) but made each young collection longer (5-7 ms).
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_heap"]


def freeze_startup_heap() -> None:
    """Exclude every object alive now from future collections (call once, before serving)."""
    gc.collect()
    gc.freeze()
