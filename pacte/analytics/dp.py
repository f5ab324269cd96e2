"""Differentially private counts for the report: noise, parameters and budget.

The report's exact figures hide groups under k (`pacte.analytics.suppress`), which
protects against reading one person off a table but not against differencing two
releases. The figures released here are epsilon-differentially private instead:

- **customers**, the number of customers in the projection (sensitivity 1: adding or
  removing one customer changes it by at most 1);
- **customers per channel**, for every channel of the model (`CHANNELS`, a public
  list, so no category is shown or hidden because of the data; sensitivity
  `len(CHANNELS)`: one customer counts at most once in each channel).

`epsilon` is split evenly between the two (sequential composition), and each count
gets discrete Laplace noise of scale `sensitivity / share` (OpenDP's
`make_laplace` on integers, whose privacy map is checked to give the share).
Noisy counts are clamped at 0, which is post-processing and costs no privacy.

Each release spends `epsilon` from the analyst principal's budget, recorded in the
audit trail by `Session.record_release`. The budget is set by the policy file's
`[privacy]` table (`Policy.privacy_budget`), never by the caller.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from pacte.analytics.projection import CUSTOMER, Projection, _detail, node_id
from pacte.errors import InputError
from pacte.graph.model import CHANNELS

__all__ = [
    "EPSILON_DEFAULT",
    "MECHANISM",
    "Noise",
    "PrivateCounts",
    "opendp_noise",
    "private_counts",
    "seeded_noise",
]

# A report at the default spends a fifth of the default budget (the policy's).
EPSILON_DEFAULT = 0.2
MECHANISM = "discrete Laplace (OpenDP make_laplace), epsilon split evenly over 2 queries"

# (true count, scale) -> noisy count.
Noise = Callable[[int, float], int]


def opendp_noise(value: int, scale: float) -> int:
    """`value` plus discrete Laplace noise of `scale`, from OpenDP's secure sampler."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    meas = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    return int(meas(value))


def opendp_epsilon(sensitivity: int, scale: float) -> float:
    """The epsilon OpenDP's privacy map gives discrete Laplace at `scale` for `sensitivity`."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    meas = dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)
    return float(meas.map(sensitivity))  # type: ignore[no-untyped-call]


def seeded_noise(seed: int) -> Noise:
    """Discrete Laplace noise from a seeded generator: for tests only, never a release.

    The difference of two geometric variables with p = 1 - exp(-1/scale).
    """
    rng = random.Random(seed)

    def sample(value: int, scale: float) -> int:
        p = 1.0 - math.exp(-1.0 / scale)

        def geometric() -> int:
            return int(math.log(1.0 - rng.random()) / math.log(1.0 - p)) if p < 1 else 0

        return value + geometric() - geometric()

    return sample


@dataclass(frozen=True, slots=True)
class PrivateCounts:
    """Noisy counts and how they were made (for the report and the audit entry)."""

    epsilon: float
    customers: int
    customers_scale: float
    channels: dict[str, int]
    channels_scale: float

    def parameters(self) -> dict[str, object]:
        return {"epsilon": self.epsilon, "mechanism": MECHANISM,
                "customers_sensitivity": 1, "customers_scale": round(self.customers_scale, 6),
                "channels_sensitivity": len(CHANNELS),
                "channels_scale": round(self.channels_scale, 6)}


def private_counts(projection: Projection, *, epsilon: float = EPSILON_DEFAULT,
                   noise: Noise = opendp_noise) -> PrivateCounts:
    """The epsilon-DP counts of `projection` (see the module doc).

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, journey=[("web", "visit", None)]) for i in range(40)])
    >>> c = private_counts(p, epsilon=1.0, noise=seeded_noise(1))
    >>> c.customers_scale, c.channels_scale, sorted(c.channels) == sorted(CHANNELS)
    (2.0, 18.0, True)
    """
    if not isinstance(epsilon, int | float) or not 0 < epsilon <= 10:
        raise InputError(f"epsilon must be > 0 and at most 10 (got {epsilon!r})")
    share = epsilon / 2
    g = _detail(projection)
    people = [n for n, kind in g.nodes(data="kind") if kind == CUSTOMER]
    per_channel = {ch: 0 for ch in CHANNELS}
    for ch in CHANNELS:
        node = node_id("channel", ch)
        if node in g:
            per_channel[ch] = len({a for a, _, rel in g.in_edges(node, data="rel")
                                   if rel == "interacted"})
    total_scale, channel_scale = 1 / share, len(CHANNELS) / share
    return PrivateCounts(
        epsilon=epsilon,
        customers=max(0, noise(len(people), total_scale)),
        customers_scale=total_scale,
        channels={ch: max(0, noise(n, channel_scale)) for ch, n in per_channel.items()},
        channels_scale=channel_scale,
    )
