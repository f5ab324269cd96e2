"""Settings read from the environment: one way to read a number, one error for a bad one."""

from __future__ import annotations

import os

from pacte.errors import ConfigError

__all__ = ["whole_number"]


def whole_number(name: str, *, unit: str) -> int | None:
    """The variable `name` as a whole number of `unit`, >= 0; None when it is unset or blank.

    Anything else is a ConfigError naming the variable, so a typo stops the start rather
    than silently falling back to the default."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of {unit}, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative ({unit})")
    return value
