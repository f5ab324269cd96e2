"""Timing side channel (G3): can response times tell a hidden customer from none at all?

Under `marketing.email` a customer who did not opt in must look exactly like one who
does not exist. Both answer `null`; this measures whether the time to answer gives
them away, as an attacker would: for each target (the email, or the id, of a hidden
customer, or a made-up one of the same shape) it sends `PROBES` requests through the
app (the ASGI app in-process, HTTP parsing, admission, execution and audit included;
no network, which only adds noise), takes the median time per target, and trains
the best threshold classifier on half of the targets, tested on the other half.

- `timing_by_email_accuracy`: the classifier's accuracy on `customerByEmail`, over
  random half splits (50% is a coin toss; the bar is < 60%).
- `timing_by_id_accuracy`: the same for `customer(id)`.

Each round probes every target once, in a new random order, so load that comes and
goes falls on both classes alike. Run alone with `python -m bench.bench_timing [--quick]`.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import sys
import time
from collections.abc import Sequence

import httpx

from bench.harness import Record, figure, seeded

__all__ = ["accuracy", "run"]

SEED = 5
PROBES = 20
BY_EMAIL = "query($e: String!) { customerByEmail(email: $e) { id } }"
BY_ID = "query($e: ID!) { customer(id: $e) { id } }"


def accuracy(hidden: Sequence[float], absent: Sequence[float], *, splits: int = 200,
             seed: int = 0) -> float:
    """Mean test accuracy of the best threshold (either direction) trained on half."""
    rng = random.Random(seed)
    labelled = [(v, 1) for v in hidden] + [(v, 0) for v in absent]
    scores = []
    for _ in range(splits):
        rng.shuffle(labelled)
        train, test = labelled[::2], labelled[1::2]
        best = (-1.0, 0.0, True)
        for threshold, _ in train:
            for above in (True, False):
                best = max(best, (_score(train, threshold, above), threshold, above))
        _, threshold, above = best
        scores.append(_score(test, threshold, above))
    return statistics.fmean(scores)


def _score(labelled: Sequence[tuple[float, int]], threshold: float, above: bool) -> float:
    """The share of targets classified right: hidden when on the `above` side."""
    right = sum(((v >= threshold) == above) == bool(y) for v, y in labelled)
    return right / len(labelled)


async def _medians(client: httpx.AsyncClient, query: str, targets: Sequence[str],
                   headers: dict[str, str]) -> list[float]:
    times: list[list[float]] = [[] for _ in targets]
    order = list(range(len(targets)))
    rng = random.Random(SEED)
    for _ in range(PROBES):
        # A new order each round: load that comes and goes falls on both classes alike.
        rng.shuffle(order)
        for i in order:
            target = targets[i]
            start = time.perf_counter()
            r = await client.post("/graphql", json={"query": query, "variables": {"e": target}},
                                  headers=headers)
            times[i].append(time.perf_counter() - start)
            body = r.json()
            assert r.status_code == 200 and not any(body["data"].values()), body
    # The fastest probe: load on the machine only ever adds time.
    return [min(t) for t in times]


def measure(customers: int, *, targets: int) -> tuple[float, float, float]:
    """Accuracy by email, by id; the median gap by email in ms (hidden minus absent)."""
    from pacte.api import create_app
    from pacte.runtime import Pacte

    with Pacte.open(seeded(customers, seed=SEED)) as rt:
        principal, key = rt.create_principal(name="timing-bench", role="app",
                                              purposes=["service", "marketing.email"])
        every, after = [], None
        service = rt.session(principal, "service")
        while True:
            page = service.customers(first=100, after=after, fields=["email"])
            every.extend(page.items)
            if not page.has_next:
                break
            after = page.end_cursor
        visible, after = set(), None
        email_session = rt.session(principal, "marketing.email")
        while True:
            seen = email_session.customers(first=100, after=after, fields=[])
            visible.update(c.id for c in seen.items)
            if not seen.has_next:
                break
            after = seen.end_cursor
        hidden = [c for c in every if c.id not in visible][:targets]
        rng = random.Random(SEED)
        emails = [str(c.fields["email"]) for c in hidden]
        # Made-up targets of the same shape as real ones.
        absent_emails = [f"{e.split('@')[0][:-2]}{rng.randrange(10, 99)}x@{e.split('@')[1]}"
                         for e in emails]
        ids = [c.id for c in hidden]
        absent_ids = [i[:2] + secrets.token_hex(len(i[2:]) // 2) for i in ids]
        headers = {"Authorization": f"Bearer {key}", "X-Purpose": "marketing.email"}

        async def probe() -> tuple[list[float], ...]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)),
                                         base_url="http://bench") as client:
                by_email = await _medians(client, BY_EMAIL, emails + absent_emails, headers)
                by_id = await _medians(client, BY_ID, ids + absent_ids, headers)
            return by_email, by_id

        by_email, by_id = asyncio.run(probe())
    n = len(hidden)
    gap = statistics.median(by_email[:n]) - statistics.median(by_email[n:])
    return (accuracy(by_email[:n], by_email[n:]), accuracy(by_id[:n], by_id[n:]), gap * 1e3)


def run(quick: bool) -> list[Record]:
    customers, targets = (1_000, 40) if quick else (2_000, 200)
    by_email, by_id, gap_ms = measure(customers, targets=targets)
    return [
        figure("timing_by_email_accuracy", by_email * 100, unit="%", size=customers,
               target="< 60"),
        figure("timing_by_id_accuracy", by_id * 100, unit="%", size=customers,
               target="< 60"),
        figure("timing_by_email_gap", gap_ms, unit="ms", size=customers),
    ]


if __name__ == "__main__":
    for record in run("--quick" in sys.argv):
        print(record)
