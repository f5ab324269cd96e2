"""Short, unique, deterministic ids without a random source or a registry of used ids.

An id is a kind prefix and 12 hex digits: a counter (the customer's position, or
that times a small stride plus a slot) pushed through a bijection of 48-bit
integers keyed by the seed and the kind. A bijection never maps two counters to
the same value, so ids are unique by construction, cost a few integer operations,
and look random enough that nothing reads order or volume from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

__all__ = ["BITS", "IdMaker", "id_maker", "salt", "scramble"]

BITS = 48
_MASK = (1 << BITS) - 1
# Odd multipliers: multiplication by an odd number is invertible modulo 2**48.
_M1 = 0x9E3779B97F4B & _MASK | 1
_M2 = 0xC2B2AE3D27D5 & _MASK | 1

IdMaker = Callable[[int], str]


def salt(*parts: object) -> int:
    """A 48-bit key for `scramble`, from the seed and a kind name."""
    text = ":".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:6], "big")


def scramble(n: int, key: int) -> int:
    """A bijection on [0, 2**48): each step (odd multiply, add, xor-shift) is invertible."""
    x = (n * _M1 + key) & _MASK
    x ^= x >> 23
    x = (x * _M2) & _MASK
    return x ^ (x >> 29)


def id_maker(prefix: str, *salt_parts: object) -> IdMaker:
    """`make(n)` -> '<prefix>_<12 hex>', distinct for distinct n in [0, 2**48)."""
    key = salt(prefix, *salt_parts)

    def make(n: int) -> str:
        x = (n * _M1 + key) & _MASK
        x ^= x >> 23
        x = (x * _M2) & _MASK
        return f"{prefix}_{x ^ (x >> 29):012x}"

    return make
