"""The reject file of a run: one CSV line per rejected row, personal values masked.

Columns: source file, line number, reason, the row as JSON with every value masked
except those of fields that are not personal (channel, kind, times, amounts...), so
the file says what was wrong without becoming a second copy of the data (G1).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

from pacte.ingest.mapping import FIELDS, Mapping
from pacte.ingest.records import PERSONAL_FIELDS

__all__ = ["MASK", "RejectFile", "masked"]

MASK = "***"


def masked(row: dict[Any, Any], mapping: Mapping, kind: str | None) -> dict[str, Any]:
    """The row with every value masked but those of known non-personal fields."""
    fields = FIELDS.get(kind or "", ())
    open_columns = {mapping.column(f) for f in fields if f not in PERSONAL_FIELDS}
    if mapping.kind_field:
        open_columns.add(mapping.kind_field)
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = str(k)
        keep = key in open_columns and not isinstance(v, dict | list)
        out[key] = v if keep else MASK
    return out


class RejectFile:
    """Created on the first rejected row, so a clean run leaves no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._writer: Any = None
        self.count = 0

    def add(self, source: str, line: int, reason: str, row: dict[str, Any]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Kept open for the whole run, closed by close().
            self._file = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow(["source", "line", "reason", "row"])
        self._writer.writerow([source, line, reason,
                               json.dumps(row, ensure_ascii=False, sort_keys=True)])
        self.count += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
