"""The k-anonymity rules themselves: thresholds, secondary suppression, merged bins."""

from __future__ import annotations

import doctest
import importlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacte.analytics.suppress import (
    K_DEFAULT,
    check_k,
    merge_sparse_bins,
    safe_quantiles,
    shown,
    suppress_mix,
)
from pacte.errors import InputError

MODULES = ["communities", "copurchase", "export", "journeys", "projection", "ratings",
           "referrals", "report", "suppress", "testing"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(f"pacte.analytics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_four_is_hidden_five_is_shown() -> None:
    assert K_DEFAULT == 5
    assert not shown(4) and shown(5)
    mix = suppress_mix({"four": range(4), "five": range(10, 15), "six": range(20, 26)})
    assert "four" not in mix.counts
    assert mix.counts["six"] == 6


@pytest.mark.parametrize("k", [0, 1, 4, -5, True, 4.9, "5"])
def test_k_cannot_be_lowered_below_five(k: object) -> None:
    with pytest.raises(InputError):
        check_k(k)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        suppress_mix({}, k=k)  # type: ignore[arg-type]


def test_a_hidden_group_cannot_be_recovered_by_subtraction() -> None:
    # Community of 12: gold 8, silver 4. Showing gold and the total would give silver.
    mix = suppress_mix({"gold": range(8), "silver": range(8, 12)})
    assert mix.counts == {} and mix.other == 12 and mix.hidden == 2


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 12)))
def test_a_partition_never_reveals_a_group_under_k(sizes: dict[str, int]) -> None:
    groups, start = {}, 0
    for name, size in sizes.items():
        groups[name] = range(start, start + size)
        start += size
    mix = suppress_mix(groups)
    total = start
    assert all(n >= K_DEFAULT for n in mix.counts.values())
    hidden_total = total - sum(mix.counts.values())
    # What is hidden is either nothing or at least k customers together.
    assert hidden_total == 0 or hidden_total >= K_DEFAULT or not mix.counts
    if mix.other is not None:
        assert mix.other >= K_DEFAULT


@given(st.lists(st.floats(0, 20, allow_nan=False), max_size=60))
def test_every_histogram_bin_holds_k(values: list[float]) -> None:
    bins = merge_sparse_bins(values, [0, 1, 2, 4, 8, 16, float("inf")])
    assert all(b.customers >= K_DEFAULT for b in bins)
    if len(values) >= K_DEFAULT:
        assert sum(b.customers for b in bins) == len(values)
    else:
        assert bins == []


@given(st.lists(st.floats(0, 1, allow_nan=False), max_size=60))
def test_quantiles_have_k_customers_each_side(values: list[float]) -> None:
    ordered = sorted(values)
    for q, v in safe_quantiles(values, [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]).items():
        assert sum(1 for x in ordered if x <= v) >= K_DEFAULT
        assert sum(1 for x in ordered if x >= v) >= K_DEFAULT
        assert 0.0 < q < 1.0


def test_minimum_and_maximum_are_never_quantiles() -> None:
    values = [float(v) for v in range(1000)]
    shown_q = safe_quantiles(values, [0.0, 1.0, 0.5])
    assert list(shown_q) == [0.5]
