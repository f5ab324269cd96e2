"""Predictive personalisation that forgets at once (issue #21).

`next_best_actions(session, customer_id, first=3)` ranks what to do next for one
customer under `personalization`: replace or service a worn device, offer what usually
follows a recent purchase, move to the channel they moved to, contact them when they
drift away. Each action has a score, an expiry and why (signals by data category; what
other customers did only as counts of at least k = 5 consenting customers). Everything
is computed on the request from what the session lets through, so a withdrawal or an
erasure changes every prediction from the next request on (G5). See docs/predict.md.
"""

from __future__ import annotations

from pacte.predict.actions import (
    AT_RISK,
    CHANNEL_CHANGE,
    DEVICE_REPLACE,
    DEVICE_SERVICE,
    FOLLOW_UP,
    KINDS,
    NextBestAction,
    Signal,
)
from pacte.predict.nba import MAX_FIRST, next_best_actions

__all__ = [
    "AT_RISK",
    "CHANNEL_CHANGE",
    "DEVICE_REPLACE",
    "DEVICE_SERVICE",
    "FOLLOW_UP",
    "KINDS",
    "MAX_FIRST",
    "NextBestAction",
    "Signal",
    "next_best_actions",
]
