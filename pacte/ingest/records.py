"""From a source row to a checked record: values parsed, identifiers normalised.

Everything a row needs to be valid is checked here, before anything is written, so a
bad row is rejected whole and never half-applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pacte.clock import check_micros, to_micros
from pacte.errors import InputError
from pacte.graph.model import CHANNELS, INTERACTION_KINDS
from pacte.identity.normalise import Identifier, normalise_identifier
from pacte.ingest.mapping import FIELDS, Mapping

__all__ = ["PERSONAL_FIELDS", "Record", "to_record"]

Scalar = str | int | float | None

# Fields whose values are personal: masked in reject files, never logged.
PERSONAL_FIELDS = frozenset({"customer_id", "name", "email", "phone", "address", "birth_date",
                             "loyalty_card", "summary", "location", "device_serial",
                             "order_id", "reading"})
_IDENTIFIERS = (("customer_id", "crm"), ("email", "email"), ("phone", "phone"),
                ("loyalty_card", "loyalty"), ("order_id", "order"),
                ("device_serial", "device"))
_TIME_FIELDS = {"created_at", "occurred_at", "ordered_at", "at"}
_NUMBER_FIELDS = {"amount", "quantity"}
_STATUS = {"granted": "granted", "grant": "granted", "yes": "granted", "true": "granted",
           "opt-in": "granted", "optin": "granted", "1": "granted",
           "withdrawn": "withdrawn", "withdraw": "withdrawn", "no": "withdrawn",
           "false": "withdrawn", "opt-out": "withdrawn", "optout": "withdrawn",
           "0": "withdrawn", "revoked": "withdrawn"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Record:
    kind: str
    line: int
    values: dict[str, Scalar]
    identifiers: tuple[Identifier, ...]
    row: dict[str, Any]  # as read, for the reject file (masked there)

    def key(self) -> str:
        """The per-row key: the kind and every mapped value, canonically (idempotency)."""
        return json.dumps([self.kind, self.values], sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"))


def to_record(kind: str, line: int, row: MappingABC[str, Any], mapping: Mapping) -> Record:
    """The checked record of one row; InputError naming the field when it is not valid."""
    values: dict[str, Scalar] = {}
    names = FIELDS[kind]
    for name, raw in zip(names, mapping.values(row, names), strict=True):
        if raw is None:
            # Most fields of most rows are absent: no call for them.
            values[name] = _parse(name, _rest(row, mapping, kind)) if name == "reading" \
                else None
        else:
            values[name] = _text(name, raw) if type(raw) is str else _parse(name, raw)
    identifiers: list[Identifier] = []
    for name, ident in _IDENTIFIERS:
        value = values.get(name)
        if value is None:
            continue
        try:
            identifiers.append(normalise_identifier(
                ident, str(value), default_country_code=mapping.default_country_code))
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from exc
    _check(kind, values, identifiers)
    # The row as read, kept for the reject file: rows are fresh dicts, not copied.
    return Record(kind, line, values, tuple(identifiers),
                  row if type(row) is dict else dict(row))


def _rest(row: MappingABC[str, Any], mapping: Mapping, kind: str) -> Any:
    """A reading without a `reading` column: every column the mapping does not use."""
    used = {mapping.column(f) for f in FIELDS[kind]}
    if mapping.kind_field:
        used.add(mapping.kind_field)
    rest = {k: v for k, v in row.items() if k not in used}
    return rest or None


def _parse(name: str, raw: Any) -> Scalar:
    if raw is None:
        return None
    if type(raw) is str:  # the common case, first
        return _text(name, raw)
    if isinstance(raw, dict | list):
        if name != "reading":
            raise InputError(f"{name}: expected a value, found a nested object")
        return json.dumps(raw, sort_keys=True, ensure_ascii=False)
    if isinstance(raw, bool):
        return _text(name, "true" if raw else "false")
    if isinstance(raw, int | float):
        if name in _TIME_FIELDS:
            return _epoch(float(raw))
        return raw if name in _NUMBER_FIELDS else str(raw)
    return _text(name, str(raw))


def _text(name: str, raw: str) -> Scalar:
    text = raw.strip()
    if not text:
        return None
    if len(text) > 10_000:
        raise InputError(f"{name}: too long (10000 characters at most)")
    if name in _NUMBER_FIELDS:
        return _number(name, text)
    if name in _TIME_FIELDS:
        return _time(name, text)
    return text


def _number(name: str, text: str) -> float:
    t = text.replace(" ", "").replace("\u00a0", "")
    if "," in t and "." in t:
        # 1.234,50 or 1,234.50: the last separator is the decimal one.
        t = t.replace(".", "").replace(",", ".") if t.rfind(",") > t.rfind(".") \
            else t.replace(",", "")
    else:
        t = t.replace(",", ".")  # a decimal comma
    try:
        return float(t)
    except ValueError as exc:
        raise InputError(f"{name}: not a number") from exc


def _epoch(seconds: float) -> int:
    # Values past the year 33658 in seconds are milliseconds.
    return int(seconds * 1000) if seconds > 1e12 else int(seconds * 1_000_000)


def _time(name: str, text: str) -> int:
    try:
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return check_micros(_epoch(float(text)), name)
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{name}: not a date or time (ISO 8601 or epoch seconds)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return check_micros(to_micros(dt), name)


def _check(kind: str, values: dict[str, Scalar], identifiers: list[Identifier]) -> None:
    _CHECKS[kind](values, [i for i in identifiers if i.kind in _WHO], bool(identifiers))


def _check_customer(values: dict[str, Scalar], who: list[Identifier], _any: bool) -> None:
    if not who:
        raise InputError("a customer needs a customer_id, email, phone or loyalty_card")
    bd = values.get("birth_date")
    if bd is not None and not _DATE.match(str(bd)):
        raise InputError("birth_date: must be a date like 1990-04-17")


def _check_interaction(values: dict[str, Scalar], _who: list[Identifier], any_id: bool
                       ) -> None:
    if not any_id:
        raise InputError("the record names no customer (no identifier)")
    _need(values, "channel", "kind", "occurred_at")
    _one_of(values, "kind", INTERACTION_KINDS)
    _one_of(values, "channel", CHANNELS)


def _check_order(values: dict[str, Scalar], _who: list[Identifier], any_id: bool) -> None:
    if not any_id:
        raise InputError("the record names no customer (no identifier)")
    _need(values, "order_id", "product", "ordered_at")
    if values.get("channel") is None:
        values["channel"] = "web"
    _one_of(values, "channel", CHANNELS)


def _check_consent(values: dict[str, Scalar], who: list[Identifier], _any: bool) -> None:
    if not who:
        raise InputError("the record names no customer (no identifier)")
    _need(values, "purpose", "status", "at")
    status = _STATUS.get(str(values["status"]).lower())
    if status is None:
        raise InputError("status: must be granted or withdrawn")
    values["status"] = status
    if values.get("source") is None:
        values["source"] = "import"


def _check_device(values: dict[str, Scalar], who: list[Identifier], _any: bool) -> None:
    _need(values, "device_serial")
    if not who:
        raise InputError("the record names no customer (no identifier)")


def _check_reading(values: dict[str, Scalar], _who: list[Identifier], _any: bool) -> None:
    _need(values, "device_serial", "at")


# What each kind of record needs, checked before anything is written.
_CHECKS: dict[str, Callable[[dict[str, Scalar], list[Identifier], bool], None]] = {
    "customers": _check_customer, "interactions": _check_interaction,
    "orders": _check_order, "consents": _check_consent, "devices": _check_device,
    "readings": _check_reading}
_WHO = frozenset({"crm", "email", "phone", "loyalty"})


def _need(values: dict[str, Scalar], *names: str) -> None:
    missing = [n for n in names if values.get(n) is None]
    if missing:
        raise InputError(f"missing {', '.join(missing)}")


def _one_of(values: dict[str, Scalar], name: str, allowed: tuple[str, ...]) -> None:
    value = values.get(name)
    if value is None:
        return
    v = str(value).strip().lower()
    if v not in allowed:
        raise InputError(f"{name}: must be one of {', '.join(allowed)}")
    values[name] = v
