"""Resume checkpoints: how far a file got, so a killed run can go on where it stopped.

A checkpoint is a small JSON file in the data directory, named by the digest of the
file's bytes and of the mapping: the same file ingested the same way. It records the
last line of the last committed batch, and is written (atomically: write, fsync,
rename) only after that batch committed. Rows after it are read again on resume; the
ones a kill left committed without a checkpoint are found by their event id or row
key and change nothing, so a resumed run ends with the graph an uninterrupted one
makes. The checkpoint is removed when the file is done.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["Checkpoints", "file_digest"]


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Checkpoints:
    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _path(self, key: str) -> Path:
        return self._dir / f"{key}.json"

    def line(self, key: str) -> int:
        """The last committed line of this file and mapping (0: start from the top)."""
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            return int(data["line"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save(self, key: str, line: int) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(key).with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"line": line}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path(key))

    def clear(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
