"""Mapping files: which source column becomes which pacte field, and what a file holds.

A mapping is a small TOML file (see docs/ingest.md for one per source kind):

    source = "crm"                 # a name for the audit trail and the reject file
    kind = "customers"             # what every row is ...
    kind_field = "type"            # ... or the column whose value says it, per row
    default_country_code = "+33"   # for national phone numbers
    [kinds]                        # values of kind_field, when they are not our names
    purchase = "orders"
    [columns]                      # pacte field = source column (a dotted path in JSON)
    email = "E-Mail"
    customer_id = "Kundennummer"

Without a mapping, every pacte field is read from the column of the same name (the
documented default names, `FIELDS` below), and the kind comes from the file's name or
its header (`guess_kind`).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pacte.errors import InputError

__all__ = ["FIELDS", "KINDS", "Mapping", "canonical_kind", "guess_kind", "load_mapping"]

# The identifier columns every kind may carry to say whose record it is.
_WHO = ("customer_id", "email", "phone", "loyalty_card")

# The kinds of record and the pacte fields (= default column names) of each.
FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "phone", "address", "birth_date",
                  "segment", "loyalty_card", "created_at"),
    "interactions": ("event_id", *_WHO, "device_serial", "channel", "kind", "occurred_at",
                     "summary", "amount", "product"),
    "orders": ("order_id", "line", *_WHO, "product", "quantity", "amount", "ordered_at",
               "channel"),
    "consents": (*_WHO, "purpose", "status", "at", "source"),
    "devices": ("device_serial", *_WHO, "device_type", "model", "location", "at"),
    "readings": ("event_id", "device_serial", "at", "reading"),
}
KINDS = tuple(FIELDS)
_ALIASES = {
    "customer": "customers", "crm": "customers", "profile": "customers",
    "profiles": "customers", "contacts": "customers", "contact": "customers",
    "interaction": "interactions", "event": "interactions", "events": "interactions",
    "tracker": "interactions", "order": "orders", "purchase": "orders",
    "purchases": "orders", "shop": "orders", "consent": "consents", "device": "devices",
    "reading": "readings", "telemetry": "readings", "iot": "readings", "pos": "orders",
    "store": "orders", "login": "interactions",
}
# Columns only one kind has, to tell a file's kind from its header.
_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("order_id", "orders"), ("purpose", "consents"), ("reading", "readings"),
    ("device_type", "devices"), ("event_id", "interactions"), ("channel", "interactions"),
    ("name", "customers"), ("device_serial", "readings"),
    # Identifiers and nothing that says otherwise: a list of customers.
    ("customer_id", "customers"), ("email", "customers"), ("phone", "customers"),
    ("loyalty_card", "customers"),
)


# Where JSON exports commonly nest a field, tried in order when no mapping names it
# (after the field's own name, then `user.<field>` and `customer.<field>`).
# Record shapes (sets of keys) whose reading plan is kept: JSON lines may vary.
_MAX_SHAPES = 256

_PATHS: dict[str, tuple[str, ...]] = {
    "device_serial": ("device.serial", "device.id", "context.device.serial"),
    "occurred_at": ("ts", "timestamp", "time"),
    "at": ("ts", "timestamp", "time"),
    "ordered_at": ("ts", "timestamp", "time"),
    "product": ("product.id", "product.sku"),
}


def canonical_kind(value: str) -> str | None:
    """Our name for a kind of record ('Purchase' -> 'orders'), or None."""
    v = value.strip().lower()
    return v if v in FIELDS else _ALIASES.get(v)


@dataclass(frozen=True)
class Mapping:
    source: str | None = None
    format: str | None = None
    kind: str | None = None
    kind_field: str | None = None
    kinds: MappingABC[str, str] = field(default_factory=dict)
    columns: MappingABC[str, str] = field(default_factory=dict)
    default_country_code: str = "+1"
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _plans: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = field(
        default_factory=dict, compare=False, repr=False)

    def column(self, name: str) -> str:
        return self.columns.get(name, name)

    def value(self, record: MappingABC[str, Any], name: str) -> Any:
        """The value of pacte field `name` in a record: from the mapped column, or
        without a mapping for it, from the first default path present (`_PATHS`)."""
        for key, parts in self._paths(name):
            value = record.get(key)
            if value is None and parts:
                value = record
                for part in parts:
                    # Records are decoded JSON or CSV rows: plain dicts (no ABC check,
                    # which costs more than the rest of this loop).
                    value = value.get(part) if type(value) is dict else None
            if value is not None:
                return value
        return None

    def values(self, record: MappingABC[str, Any], names: tuple[str, ...]) -> list[Any]:
        """`value` of each name, in one loop: a row's fields are read here, and the
        calls `value` makes per field cost as much as the lookups themselves."""
        # The paths that can hold a value in records of this shape (its keys): the
        # others are skipped, which for a CSV file (one shape) is most of them.
        shape = (names, tuple(record))
        plan: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None = \
            self._plans.get(shape)
        if plan is None:
            keys = set(shape[1])
            plan = tuple(tuple(p for p in self._paths(n)
                               if p[0] in keys or (p[1] and p[1][0] in keys))
                         for n in names)
            if len(self._plans) < _MAX_SHAPES:
                self._plans[shape] = plan
        get = record.get
        out: list[Any] = []
        for paths in plan:
            value = None
            for key, parts in paths:
                value = get(key)
                if value is None and parts:
                    value = record
                    for part in parts:
                        value = value.get(part) if type(value) is dict else None
                if value is not None:
                    break
            out.append(value)
        return out

    def _paths(self, name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Where to look for a field, each path with its dotted parts (once per name)."""
        cache: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = self._cache
        found = cache.get(name)
        if found is None:
            paths = (self.columns[name],) if name in self.columns else (
                name, *_PATHS.get(name, ()), f"user.{name}", f"customer.{name}")
            found = cache[name] = tuple(
                (p, tuple(p.split(".")) if "." in p else ()) for p in paths)
        return found

    def kind_of(self, record: MappingABC[str, Any]) -> str | None:
        """The kind of one record: the mapping's, else the value of its kind field."""
        if self.kind_field is None:
            return self.kind
        value = get_path(record, self.kind_field)
        if not isinstance(value, str):
            return None
        return self.kinds.get(value) or canonical_kind(value)

    def fingerprint(self) -> str:
        """A digest of what the mapping decides (part of a resume checkpoint's key)."""
        text = json.dumps([self.source, self.format, self.kind, self.kind_field,
                           dict(self.kinds), dict(self.columns), self.default_country_code],
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def get_path(record: MappingABC[str, Any], path: str) -> Any:
    """The value at a dotted path ('user.contact.email'); a flat key wins if present."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, MappingABC) or part not in value:
            return None
        value = value[part]
    return value


def load_mapping(path: str | Path) -> Mapping:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such mapping file") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: not a readable TOML mapping ({exc})") from exc
    return mapping_from(data, where=str(path))


def mapping_from(data: MappingABC[str, Any], *, where: str = "mapping") -> Mapping:
    known = {"source", "format", "kind", "kind_field", "kinds", "columns",
             "default_country_code"}
    extra = sorted(set(data) - known)
    if extra:
        raise InputError(f"{where}: unknown keys {', '.join(extra)}")
    kind = data.get("kind")
    if kind is not None:
        kind = _kind(kind, where)
    kinds = {str(k): _kind(v, where) for k, v in dict(data.get("kinds", {})).items()}
    columns = {str(k): str(v) for k, v in dict(data.get("columns", {})).items()}
    all_fields = {f for fs in FIELDS.values() for f in fs}
    unknown = sorted(set(columns) - all_fields)
    if unknown:
        raise InputError(f"{where}: unknown pacte fields {', '.join(unknown)}")
    fmt = data.get("format")
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise InputError(f"{where}: format must be csv or jsonl")
    return Mapping(source=_opt_str(data.get("source")), format=fmt, kind=kind,
                   kind_field=_opt_str(data.get("kind_field")), kinds=kinds, columns=columns,
                   default_country_code=str(data.get("default_country_code", "+1")))


def _kind(value: object, where: str) -> str:
    kind = canonical_kind(value) if isinstance(value, str) else None
    if kind is None:
        raise InputError(f"{where}: unknown record kind {value!r}; one of {', '.join(KINDS)}")
    return kind


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def guess_kind(path: str, header: Sequence[str]) -> str | None:
    """The kind a file holds, by a word of its name ('crm_export.csv') or its header."""
    stem = Path(path).stem.lower() if path != "-" else ""
    words = stem.replace("-", "_").replace(".", "_").split("_")
    # A kind's own name wins over a source's name: shop_customers.csv holds customers.
    for word in words:
        if word in FIELDS or word + "s" in FIELDS:
            return canonical_kind(word)
    for word in words:
        kind = canonical_kind(word)
        if kind is not None:
            return kind
    columns = set(header)
    for column, kind in _SIGNATURES:
        if column in columns:
            return kind
    return None
