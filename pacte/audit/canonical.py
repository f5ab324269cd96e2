"""RFC 8785 (JSON Canonicalization Scheme) bytes of audit entries.

The hash chain and the Merkle leaves are computed over these bytes, so the same
entry must serialise to the same bytes on every machine and in every version.

`rfc8785` is the reference. Audit records are nearly always flat objects of ASCII
keys, strings, small integers, booleans, nulls and lists of strings; for those
`orjson` with sorted keys produces exactly the same bytes (sorting by UTF-16 code units
equals sorting by code points for ASCII keys, and the string escapes agree), about ten
times faster than the standard library and forty times faster than `rfc8785`, which
matters because every request appends one. Anything else (floats, non-ASCII keys, big
integers, subclasses) goes through `rfc8785`. A property test holds the two paths to
byte equality.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

from pacte.errors import IntegrityError

__all__ = ["Sealed", "canonical_bytes", "check_json_value"]

# I-JSON: integers beyond this cannot be represented exactly by every JSON reader.
_MAX_SAFE_INT = 2**53 - 1
_MAX_DEPTH = 32

# Sorted keys at every level; nothing else: compact separators and raw UTF-8 are
# orjson's defaults, as RFC 8785 wants them.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS


class Sealed:
    """A part of a record checked and canonicalised once, for records that repeat it.

    A request's entry names its operations and fields, and every request of one kind
    names the same ones (pacte.audit.request_entry): sealed, they are walked and
    serialised when first seen, and each later record that holds the same `Sealed`
    costs neither. Its bytes are made here, by the same check and serialiser as any
    value, and cannot be set otherwise: a `Sealed` is JSON-safe by construction.
    """

    __slots__ = ("_fragment", "value")

    value: object
    _fragment: orjson.Fragment

    def __init__(self, value: object) -> None:
        fast = check_json_value(value)
        text = canonical_bytes({"v": value}, checked=fast)  # any JSON value, as a member
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_fragment", orjson.Fragment(text[len(b'{"v":'):-1]))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Sealed part cannot change")

    def __repr__(self) -> str:
        return f"Sealed({self.value!r})"


def _fragment(value: object) -> orjson.Fragment:
    """orjson's `default`: a sealed part's bytes; anything else is not JSON to it."""
    if type(value) is Sealed:
        return value._fragment
    raise TypeError


def check_json_value(value: object, *, _depth: int = 0) -> bool:
    """Refuse anything that is not plain JSON; True when the fast serialiser applies.

    Bytes are refused by name: in an audit record they would most likely be
    ciphertext or a key, and the trail must never hold either.
    """
    # Exact-type tests first: this runs on every append, and records are made of
    # plain str, list and dict; subclasses and the rest take the general path below.
    t = type(value)
    if t is str or t is bool or value is None or t is Sealed:
        return True
    if t is dict:
        return _check_dict(value, _depth)  # type: ignore[arg-type]
    if t is list:
        if _depth >= _MAX_DEPTH:
            raise IntegrityError("audit record is nested too deeply")
        fast = True
        for item in value:  # type: ignore[attr-defined]
            ti = type(item)
            if ti is str:
                continue
            if ti is dict:  # the operations of a request's entry
                fast = _check_dict(item, _depth + 1) and fast
            else:
                fast = check_json_value(item, _depth=_depth + 1) and fast
        return fast
    return _check_general(value, _depth)


def _check_dict(value: dict[object, object], depth: int) -> bool:
    """`check_json_value` for a plain dict: a record, or an operation of one."""
    if depth >= _MAX_DEPTH:
        raise IntegrityError("audit record is nested too deeply")
    fast = True
    for key, item in value.items():
        if type(key) is not str:
            raise IntegrityError("audit record keys must be strings")
        ti = type(item)
        if ti is str or item is None or ti is bool or ti is Sealed:
            continue
        if ti is list and depth + 1 < _MAX_DEPTH:
            # Most often a list of names; the loop is inline, as this runs on every append.
            for x in item:  # type: ignore[attr-defined]
                if type(x) is not str:
                    break
            else:
                continue
        fast = check_json_value(item, _depth=depth + 1) and fast
    # Non-ASCII keys sort differently by UTF-16 units (RFC 8785) and by code points.
    return fast and "".join(value).isascii()  # type: ignore[arg-type]


def _check_general(value: object, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        raise IntegrityError("audit record is nested too deeply")
    if isinstance(value, bytes | bytearray | memoryview):
        raise IntegrityError("audit records may not hold bytes")
    if isinstance(value, bool | str):
        return False  # a subclass: let rfc8785 serialise it
    if isinstance(value, int):
        if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise IntegrityError("audit record holds an integer outside the JSON-safe range")
        return type(value) is int
    if isinstance(value, float):
        if not math.isfinite(value):
            raise IntegrityError("audit record holds a non-finite number")
        return False
    if isinstance(value, list | tuple):
        for item in value:
            check_json_value(item, _depth=depth + 1)
        return False
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise IntegrityError("audit record keys must be strings")
            check_json_value(item, _depth=depth + 1)
        return False
    raise IntegrityError(f"audit record holds a value that is not JSON: {type(value).__name__}")


def canonical_bytes(value: Mapping[str, object], *, checked: bool | None = None) -> bytes:
    """The RFC 8785 bytes of a JSON object.

    `checked` is the result of an earlier `check_json_value(value)`, to skip walking
    the value twice; without it the value is checked here.
    """
    fast = check_json_value(value) if checked is None else checked
    if fast:
        try:
            return orjson.dumps(value, option=_ORJSON_OPTIONS, default=_fragment)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: rfc8785 decides how (and whether) to write it
    try:
        return rfc8785.dumps(_plain(value))
    except Exception as exc:
        raise IntegrityError(f"audit record cannot be canonicalised: {exc}") from exc


def _plain(value: object) -> Any:
    """Mappings as dicts and tuples as lists, the only containers rfc8785 takes."""
    if type(value) is Sealed:
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
