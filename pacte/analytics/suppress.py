"""k-anonymity for every aggregate the analytics layer returns, plots or exports (G9).

Every number an analyst sees is computed over *distinct customers*; a number over
fewer than `k` of them is not shown. Three shapes of aggregate occur, and each has
its rule here, so analyses cannot each invent their own:

- a **mix** (counts per category: segments, channels, products, stars) hides small
  categories, and then hides more (smallest first) until what is hidden covers at
  least `k` customers, so a hidden count cannot be recovered by subtracting the
  shown ones from a known total (secondary suppression);
- a **histogram** merges neighbouring sparse bins instead of hiding them, so every
  bin it returns holds at least `k` customers;
- a **quantile** is shown only when at least `k` customers lie on each side of it
  (never the minimum or the maximum, which are one person's value).

`k` may be raised, never lowered below `K_DEFAULT`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pacte.errors import InputError

__all__ = [
    "K_DEFAULT",
    "Bin",
    "Mix",
    "check_k",
    "merge_sparse_bins",
    "safe_quantiles",
    "shown",
    "suppress_mix",
]

K_DEFAULT = 5


def check_k(k: int) -> int:
    """`k` itself, once checked: a whole number of at least `K_DEFAULT`.

    >>> check_k(5), check_k(10)
    (5, 10)
    >>> check_k(4)
    Traceback (most recent call last):
    ...
    pacte.errors.InputError: k must be a whole number >= 5 (got 4)
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < K_DEFAULT:
        raise InputError(f"k must be a whole number >= {K_DEFAULT} (got {k!r})")
    return k


def shown(customers: int, *, k: int = K_DEFAULT) -> bool:
    """Whether an aggregate over `customers` distinct customers may be shown.

    >>> shown(4), shown(5)
    (False, True)
    """
    return customers >= k


@dataclass(frozen=True, slots=True)
class Mix:
    """Distinct customers per category, with small categories hidden.

    `counts` holds the shown categories, largest first; `other` is how many distinct
    customers the hidden categories cover together (None when that is under k, or
    nothing is hidden); `hidden` is how many categories were hidden.
    """

    counts: dict[str, int] = field(default_factory=dict)
    other: int | None = None
    hidden: int = 0

    def top(self, n: int) -> list[tuple[str, int]]:
        """The `n` largest shown categories as `(category, customers)` pairs."""
        return list(self.counts.items())[:n]


def suppress_mix(groups: Mapping[str, Collection[Hashable]], *, k: int = K_DEFAULT) -> Mix:
    """Count the distinct members of each group, hiding groups of fewer than `k`.

    When the hidden groups together cover fewer than `k` members, more groups are
    hidden, smallest first, so no hidden count can be worked out from the others.

    >>> m = suppress_mix({"gold": range(8), "silver": range(8, 20), "bronze": range(20, 24)})
    >>> m.counts, m.other, m.hidden        # bronze (4) hidden, then gold too: 12 together
    ({'silver': 12}, 12, 2)
    >>> suppress_mix({"gold": range(5), "silver": range(5, 10)}).counts
    {'gold': 5, 'silver': 5}
    >>> suppress_mix({"gold": range(3)})    # too few for anything
    Mix(counts={}, other=None, hidden=1)
    """
    check_k(k)
    members = {name: set(m) for name, m in groups.items() if m}
    ordered = sorted(members, key=lambda g: (-len(members[g]), g))
    visible = [g for g in ordered if len(members[g]) >= k]
    hidden = [g for g in ordered if len(members[g]) < k]
    covered: set[Hashable] = set().union(*(members[g] for g in hidden)) if hidden else set()
    while covered and len(covered) < k and visible:
        smallest = visible.pop()
        hidden.append(smallest)
        covered |= members[smallest]
    other = len(covered) if len(covered) >= k else None
    return Mix({g: len(members[g]) for g in visible}, other, len(hidden))


@dataclass(frozen=True, slots=True)
class Bin:
    """`customers` distinct customers with a value in `[low, high)`."""

    low: float
    high: float
    customers: int


def merge_sparse_bins(values: Iterable[float], edges: Sequence[float], *,
                      k: int = K_DEFAULT) -> list[Bin]:
    """A histogram of one value per customer, every bin holding at least `k` of them.

    Bins are `[edges[i], edges[i+1])`, the last one closed on the right; values
    outside the edges are clamped into the first or last bin. Sparse bins are merged
    with their right neighbour (the rightmost leftover with its left one).

    >>> [(b.low, b.high, b.customers) for b in merge_sparse_bins(
    ...     [0.5] * 6 + [1.5] * 2 + [2.5] * 3 + [3.5] * 9, [0, 1, 2, 3, 4])]
    [(0, 1, 6), (1, 3, 5), (3, 4, 9)]
    >>> merge_sparse_bins([0.5] * 4, [0, 1])   # four customers: nothing to show
    []
    """
    check_k(k)
    if len(edges) < 2 or any(b <= a for a, b in pairwise(edges)):
        raise InputError("bin edges must be at least two increasing numbers")
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = 0
        while i < len(counts) - 1 and v >= edges[i + 1]:
            i += 1
        counts[i] += 1
    out: list[Bin] = []
    start, acc = 0, 0
    for i, n in enumerate(counts):
        acc += n
        if acc >= k:
            out.append(Bin(edges[start], edges[i + 1], acc))
            start, acc = i + 1, 0
    if acc and out:
        last = out.pop()
        out.append(Bin(last.low, edges[-1], last.customers + acc))
    return out


def safe_quantiles(values: Sequence[float], qs: Iterable[float], *,
                   k: int = K_DEFAULT) -> dict[float, float]:
    """The quantiles of one value per customer that have `k` customers on each side.

    Linear interpolation between order statistics; a quantile is left out when
    fewer than `k` customers lie at or below it, or at or above it.

    >>> safe_quantiles([float(v) for v in range(20)], [0.1, 0.5, 0.9, 1.0])
    {0.5: 9.5}
    """
    check_k(k)
    ordered = sorted(values)
    n = len(ordered)
    out: dict[float, float] = {}
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise InputError(f"quantiles are between 0 and 1 (got {q})")
        if n == 0:
            continue
        pos = q * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        if lo + 1 < k or n - hi < k:
            continue
        out[q] = ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
    return out
