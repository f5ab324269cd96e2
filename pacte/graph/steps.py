"""The steps of a request, as the door records them for its audit entry.

A request's steps become one entry (pacte.audit.request_entry, called by
`Access._entry`): one step as it is, several merged.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["Step", "claim"]


class Step(NamedTuple):
    """One operation of a request, as its audit entry will list it."""

    action: str
    outcome: str
    subjects: tuple[str, ...]  # customer ids; pseudonymised when the entry is written
    fields: tuple[str, ...]
    reason: str | None
    extra: Mapping[str, object] | None


_PURPOSE_LIKE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def claim(purpose: str | None) -> str | None:
    """A claimed purpose as it may be recorded: short names as they are, else a hash.

    X-Purpose is whatever the caller sends (8,000 characters, or a personal value):
    the trail keeps enough to tell claims apart, and no more.
    """
    if purpose is None or _PURPOSE_LIKE.fullmatch(purpose):
        return purpose
    digest = hashlib.sha256(purpose.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:32]}"
