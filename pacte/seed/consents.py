"""A realistic mix of consent histories, as CONSENTED edges to purpose ids.

About 40% of customers opt in to nothing (opt-in is the default state, so they have
no edge at all). The rest grant one or a few consent-based purposes, some to the
parent `marketing`, some to a single channel of it; a few grants carry an end
date (some already passed, which reads as expired), and a few are withdrawn later:
the grant and the withdrawal are both kept, as consent history never overwrites.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pacte.graph.store import Edge
from pacte.seed.ids import IdMaker
from pacte.seed.pools import CONSENT_SOURCES, WITHDRAW_SOURCES

__all__ = ["CONSENT_PURPOSES", "NO_CONSENT_SHARE", "POLICY_VERSION", "consent_edges"]

POLICY_VERSION = "seed"
CONSENT_PURPOSES: tuple[str, ...] = (
    "marketing", "marketing.email", "marketing.sms", "personalization", "analytics",
)
NO_CONSENT_SHARE = 0.40
_WITHDRAW_SHARE = 0.08  # of grants, later withdrawn
_UNTIL_SHARE = 0.10  # of grants, given for one year only
_YEAR_US = 365 * 86_400 * 1_000_000

# Sets of purposes granted together, with weights in percent of all customers
# (they add up to 100 - 40, the share that grants something).
_PROFILES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("marketing",), 10),
    (("marketing.email",), 10),
    (("marketing.sms",), 3),
    (("personalization",), 8),
    (("analytics",), 7),
    (("marketing", "personalization"), 7),
    (("marketing.email", "analytics"), 5),
    (("personalization", "analytics"), 5),
    (("marketing", "personalization", "analytics"), 5),
)
_PROFILE_TABLE: tuple[tuple[str, ...], ...] = tuple(
    p for p, w in _PROFILES for _ in range(w))


def _proof(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def consent_edges(
    customer_id: str,
    slot: int,
    *,
    created_at: int,
    now_us: int,
    random: Callable[[], float],
    make_id: IdMaker,
) -> list[Edge]:
    """The consent history of one customer; `slot` is the base of its edge id counters.

    `make_id(slot + n)` names the n-th edge, so callers reserve 16 counters per
    customer (at most 3 grants and 3 withdrawals are ever made).
    """
    u = random()
    if u < NO_CONSENT_SHARE:
        return []
    table = _PROFILE_TABLE
    purposes = table[int((u - NO_CONSENT_SHARE) / (1 - NO_CONSENT_SHARE) * len(table))]
    out: list[Edge] = []
    span = now_us - created_at
    for purpose in purposes:
        at = created_at + int(random() * span)
        source = CONSENT_SOURCES[int(random() * len(CONSENT_SOURCES))]
        until = at + _YEAR_US if random() < _UNTIL_SHARE else None
        out.append(Edge("CONSENTED", make_id(slot + len(out)), customer_id, purpose, at, {
            "status": "granted", "until": until, "source": source,
            "policy_version": POLICY_VERSION,
            "proof": _proof(f"{customer_id}|{purpose}|granted|{at}|{source}"),
        }))
        if random() < _WITHDRAW_SHARE:
            # Strictly later, so the withdrawal is the newest state of the pair.
            w_at = at + 1 + int(random() * (now_us - at - 1))
            w_source = WITHDRAW_SOURCES[int(random() * len(WITHDRAW_SOURCES))]
            out.append(Edge("CONSENTED", make_id(slot + len(out)), customer_id, purpose, w_at, {
                "status": "withdrawn", "until": None, "source": w_source,
                "policy_version": POLICY_VERSION,
                "proof": _proof(f"{customer_id}|{purpose}|withdrawn|{w_at}|{w_source}"),
            }))
    return out
