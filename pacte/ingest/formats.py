"""Reading source files as a stream of rows: CSV and JSON lines.

A row is `(line, record)`: the 1-based line where it starts and a dict (CSV: column
name to text; JSON lines: the decoded object, nested fields addressed later by dotted
paths). Nothing is read ahead beyond one row, so memory stays bounded whatever the
file size. Problems of one row become a `BadRow` (that row is rejected, the rest goes
in); problems of the file as a whole (not UTF-8, an unbalanced quote, an oversized
field, an empty file, a directory) raise one `SourceError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from pacte.errors import SourceError

__all__ = ["FORMATS", "MAX_FIELD", "BadRow", "Row", "detect_format", "open_source",
           "read_rows", "source_name"]

FORMATS = ("csv", "jsonl")
# A field or JSON line longer than this is not customer data but a broken export.
MAX_FIELD = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")


class Row(NamedTuple):
    line: int
    record: dict[str, Any]


class BadRow(NamedTuple):
    line: int
    reason: str
    raw: dict[str, Any]


def source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def open_source(path: str) -> IO[bytes]:
    """The file as bytes ('-' is standard input); one clear error when it cannot be."""
    if path == "-":
        return sys.stdin.buffer
    p = Path(path)
    if p.is_dir():
        raise SourceError(f"{path}: is a directory, not a file")
    try:
        return p.open("rb")
    except FileNotFoundError as exc:
        raise SourceError(f"{path}: no such file") from exc
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from exc


def detect_format(path: str, head: bytes) -> str:
    """csv or jsonl, by the file's extension, else by its first non-blank character."""
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if text.startswith(b"{") else "csv"


def read_rows(stream: IO[bytes], *, name: str, format: str) -> Iterator[Row | BadRow]:
    if format == "csv":
        return _csv_rows(stream, name)
    if format == "jsonl":
        return _jsonl_rows(stream, name)
    raise SourceError(f"{name}: unknown format {format!r}; one of {', '.join(FORMATS)}")


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    # utf-8-sig drops a byte order mark, which spreadsheet exports often begin with.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")


def _sniff(header: str) -> str:
    counts = {d: _outside_quotes(header).count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _outside_quotes(line: str) -> str:
    return "".join(part for i, part in enumerate(line.split('"')) if i % 2 == 0)


def _csv_rows(stream: IO[bytes], name: str) -> Iterator[Row | BadRow]:
    text = _text(stream)
    line_no = 0
    try:
        first = text.readline(MAX_FIELD + 1)
        if len(first) > MAX_FIELD:
            raise SourceError(f"{name}: line 1: the header is longer than {MAX_FIELD} bytes")
        if not first.strip():
            raise SourceError(f"{name}: the file is empty (no header line)")
        delimiter = _sniff(first)
        header = next(csv.reader([first], delimiter=delimiter, strict=True))
        header = [h.strip() for h in header]
        if len(set(header)) != len(header) or any(not h for h in header):
            raise SourceError(f"{name}: line 1: the header has empty or repeated column names")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        line_no = 1
        while True:
            start = line_no + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise SourceError(_csv_problem(name, reader.line_num + 1, exc)) from exc
            line_no = reader.line_num + 1
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield BadRow(start, f"expected {len(header)} columns, found {len(values)}",
                             dict(enumerate(values)))  # type: ignore[arg-type]
                continue
            yield Row(start, dict(zip(header, values, strict=True)))
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}: not UTF-8 text (after line {line_no}); "
                          f"re-export it as UTF-8") from exc


def _csv_problem(name: str, line: int, exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"{name}: line {line}: a field is longer than {MAX_FIELD} bytes"
    if "unexpected end of data" in text or "EOF" in text:
        return f"{name}: line {line}: a quoted field is never closed (unbalanced quote)"
    return f"{name}: line {line}: malformed CSV ({text})"


def _jsonl_rows(stream: IO[bytes], name: str) -> Iterator[Row | BadRow]:
    line_no = 0
    seen = False
    while True:
        raw = stream.readline(MAX_FIELD + 1)
        if not raw:
            break
        line_no += 1
        if len(raw) > MAX_FIELD and not raw.endswith(b"\n"):
            while (rest := stream.readline(MAX_FIELD)) and not rest.endswith(b"\n"):
                pass  # skip the rest of the oversized line without holding it
            yield BadRow(line_no, f"the line is longer than {MAX_FIELD} bytes", {})
            seen = True
            continue
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SourceError(f"{name}: line {line_no}: not UTF-8 text; "
                              f"re-export it as UTF-8") from exc
        if not text.strip():
            continue
        seen = True
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadRow(line_no, f"not valid JSON ({exc.msg} at column {exc.colno})", {})
            continue
        if not isinstance(value, dict):
            yield BadRow(line_no, "a line must hold one JSON object", {})
            continue
        yield Row(line_no, value)
    if not seen:
        raise SourceError(f"{name}: the file is empty (no records)")


# csv refuses fields over its limit with an error we turn into one clear line.
csv.field_size_limit(MAX_FIELD)
