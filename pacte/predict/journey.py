"""Changes in a customer's own journey: a channel they moved to, a customer drifting away.

From the customer's own interactions only (`user.behavior`: channel and kind, with
their times), within the purpose's retention.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from pacte.graph.views import InteractionView
from pacte.predict.actions import AT_RISK, CHANNEL_CHANGE, NextBestAction, Signal

__all__ = ["RECENT_CHANNEL", "RECENT_RISK", "at_risk", "channel_change"]

RECENT_RISK = timedelta(days=60)  # the window a drift shows in
RECENT_CHANNEL = timedelta(days=120)  # the window a channel move shows in
_CONTACT_FOR = timedelta(days=14)
_CHANNEL_FOR = timedelta(days=60)


def _split(journey: Sequence[InteractionView], since: datetime
           ) -> tuple[list[InteractionView], list[InteractionView]]:
    # Telemetry is the devices talking, not the customer.
    mine = [v for v in journey if v.get("kind") != "telemetry"]
    return [v for v in mine if v.occurred_at >= since], [v for v in mine if v.occurred_at < since]


def at_risk(journey: Sequence[InteractionView], *, now: datetime) -> NextBestAction | None:
    """A contact to make when an active customer's recent contacts are all complaints:
    at least two support contacts and nothing else in RECENT_RISK, after activity before."""
    recent, earlier = _split(journey, now - RECENT_RISK)
    support = sum(v.get("kind") == "support" for v in recent)
    if support < 2 or support < len(recent) or len(earlier) < 2:
        return None
    why = (Signal("user.behavior", "customer",
                  f"{support} support contacts and no other activity in "
                  f"{RECENT_RISK.days} days, after {len(earlier)} contacts before"),)
    return NextBestAction(AT_RISK, "", round(min(0.9, 0.5 + 0.1 * support), 3),
                          now + _CONTACT_FOR, why)


def channel_change(journey: Sequence[InteractionView], *, now: datetime
                   ) -> NextBestAction | None:
    """Reach the customer on the channel they moved to: at least 3 contacts in
    RECENT_CHANNEL, three quarters on one channel that had at most a third before."""
    recent, earlier = _split(journey, now - RECENT_CHANNEL)
    if len(recent) < 3 or len(earlier) < 2:
        return None
    channel, n = Counter(str(v.get("channel")) for v in recent).most_common(1)[0]
    share = n / len(recent)
    before = sum(v.get("channel") == channel for v in earlier) / len(earlier)
    if share < 0.75 or before > 1 / 3:
        return None
    why = (Signal("user.behavior", "customer",
                  f"{share:.0%} of the last {RECENT_CHANNEL.days} days' contacts on {channel}, "
                  f"{before:.0%} before"),)
    return NextBestAction(CHANNEL_CHANGE, channel, round(share - before, 3),
                          now + _CHANNEL_FOR, why)
