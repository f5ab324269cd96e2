"""What a prediction is: a next best action, its score, its expiry and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "AT_RISK",
    "CHANNEL_CHANGE",
    "DEVICE_REPLACE",
    "DEVICE_SERVICE",
    "FOLLOW_UP",
    "KINDS",
    "NextBestAction",
    "Signal",
]

DEVICE_REPLACE = "device.replace"
DEVICE_SERVICE = "device.service"
FOLLOW_UP = "offer.follow_up"
CHANNEL_CHANGE = "channel.change"
AT_RISK = "contact.at_risk"
KINDS = (DEVICE_REPLACE, DEVICE_SERVICE, FOLLOW_UP, CHANNEL_CHANGE, AT_RISK)


@dataclass(frozen=True, slots=True)
class Signal:
    """One reason for an action, as an advisor may say it out loud.

    `category` is the data category it was drawn from; `source` is "customer" for the
    customer's own data and "customers" for what consenting customers did, then counted
    in `customers` (at least k, never fewer, never who). `detail` names the signal in
    words; it holds values of this customer only, never of anyone else.
    """

    category: str
    source: str
    detail: str
    customers: int | None = None


@dataclass(frozen=True, slots=True)
class NextBestAction:
    """An action to take for one customer, best first in a list.

    `target` is what it is about: a device id, a product id, a channel, or "" (the
    customer). `score` is in [0, 1]; `expires_at` is when the action stops making sense.
    """

    kind: str
    target: str
    score: float
    expires_at: datetime
    why: tuple[Signal, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.target
