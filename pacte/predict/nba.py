"""Next best actions for one customer: the signals of every predictor, ranked.

One call reads, through the session and under `personalization` only: what consenting
customers bought after this customer's recent purchases (the gate: any other purpose is
refused, a customer without consent is not found), the customer's own journey and
devices; then puts the use on record with the kinds served and the categories read.
Nothing is kept between calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacte.errors import InputError
from pacte.predict.actions import NextBestAction
from pacte.predict.devices import device_actions
from pacte.predict.follow import follow_ups
from pacte.predict.journey import at_risk, channel_change

if TYPE_CHECKING:
    from pacte.graph.session import Session

__all__ = ["MAX_FIRST", "next_best_actions"]

MAX_FIRST = 10
# The customer's own newest contacts read (one page, within retention): enough to see
# the last months and what came before them, which is all the journey rules compare.
_JOURNEY = 15
# Channel and kind only: nothing personal is decrypted to predict.
_FIELDS = ("channel", "kind")
_CATEGORIES = ("user.behavior", "user.device", "user.financial")


def next_best_actions(session: Session, customer_id: str, *, first: int = 3
                      ) -> list[NextBestAction]:
    """Up to `first` actions for the customer, best first (ties: by kind and target).

    Raises PurposeNotGranted under any purpose but personalization (and those below
    it), NotFound for a customer absent or without consent to it.
    """
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= MAX_FIRST:
        raise InputError(f"first must be between 0 and {MAX_FIRST}")
    actions = follow_ups(session, customer_id)  # first: it is the gate
    now = session.now
    journey = session.interactions(customer_id, first=_JOURNEY, fields=_FIELDS).items
    for found in (at_risk(journey, now=now), channel_change(journey, now=now)):
        if found is not None:
            actions.append(found)
    actions.extend(device_actions(session.devices(customer_id), now=now))
    ranked = sorted(actions, key=lambda a: (-a.score, a.kind, a.target))[:first]
    session.record_prediction(customer_id, kinds=[a.kind for a in ranked],
                              categories=_CATEGORIES)
    return ranked

