"""One way to read a number from the environment (pacte.env)."""

from __future__ import annotations

import pytest

from pacte.env import whole_number
from pacte.errors import ConfigError


def test_a_whole_number_is_read_and_blank_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PACTE_T", raising=False)
    assert whole_number("PACTE_T", unit="rows") is None
    monkeypatch.setenv("PACTE_T", "  ")
    assert whole_number("PACTE_T", unit="rows") is None
    monkeypatch.setenv("PACTE_T", "0")
    assert whole_number("PACTE_T", unit="rows") == 0
    monkeypatch.setenv("PACTE_T", "120")
    assert whole_number("PACTE_T", unit="rows") == 120


@pytest.mark.parametrize("raw, says", [("1.5", "whole number of rows"), ("lots", "'lots'"),
                                       ("-1", "negative")])
def test_anything_else_is_one_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, raw: str, says: str) -> None:
    monkeypatch.setenv("PACTE_T", raw)
    with pytest.raises(ConfigError, match="PACTE_T") as caught:
        whole_number("PACTE_T", unit="rows")
    assert says in str(caught.value)
