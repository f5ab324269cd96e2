"""Where the key-encryption key (KEK) comes from: a key file, an environment variable, or a KMS.

A `KeyProvider` only wraps and unwraps data keys; it never sees data. KEKs have
versions: `rotate` adds one and makes it current, and every older version stays
available for unwrapping, so rotation never makes stored data unreadable. A KMS can
be plugged in by implementing the same four members.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from pacte.crypto._files import read_private, write_private
from pacte.crypto._keys import Kek, MasterSecret
from pacte.errors import KeyVaultError

__all__ = [
    "ENV_VAR",
    "EnvKeyProvider",
    "FileKeyProvider",
    "KeyProvider",
    "provider_from_env_or_file",
]

ENV_VAR = "PACTE_MASTER_KEY"
_FORMAT = "pacte-kek/1"
_WHAT = "key file"


@runtime_checkable
class KeyProvider(Protocol):
    """A source of versioned key-encryption keys."""

    @property
    def current_version(self) -> int:
        """The KEK version new data keys are wrapped under."""
        ...

    def wrap(self, plaintext_key: bytes, *, version: int | None = None) -> tuple[int, bytes]:
        """(version used, wrapped bytes); `version` defaults to the current one."""
        ...

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        """The plaintext key; KeyVaultError if the version is unknown or the bytes fail."""
        ...

    def rotate(self) -> int:
        """Add a new KEK version, make it current and return it."""
        ...


class FileKeyProvider:
    """KEKs kept in a local JSON key file (mode 0600) made by `FileKeyProvider.create`.

    The file holds every version still needed: the vault retires (`retire`) the old
    versions no data key is wrapped under any more once a rotation has re-wrapped them,
    so a leaked copy of an old key file opens nothing the current one does not.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._keys: dict[int, Kek] = {}
        self._texts: dict[int, str] = {}
        self._current = 0
        self._load()

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Write a new key file with KEK version 1; refuses to overwrite an existing one."""
        _, text = Kek.generate()
        write_private(Path(path), _dump(1, {1: text}), what=_WHAT, replace=False)
        return cls(path)

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self._path)!r}, current_version={self._current})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def current_version(self) -> int:
        return self._current

    def wrap(self, plaintext_key: bytes, *, version: int | None = None) -> tuple[int, bytes]:
        v = self._current if version is None else version
        return v, self._kek(v).wrap(plaintext_key, version=v)

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        return self._kek(version).unwrap(wrapped, version=version)

    def rotate(self) -> int:
        # Re-read first: another process may have rotated since we loaded the file, and
        # writing our stale copy back would drop its version.
        self._load()
        version = self._current + 1
        kek, text = Kek.generate()
        texts = {**self._texts, version: text}
        write_private(self._path, _dump(version, texts), what=_WHAT, replace=True)
        self._keys[version] = kek
        self._texts = texts
        self._current = version
        return version

    def retire(self, *, keep: set[int]) -> list[int]:
        """Remove the versions older than the current one that are not in `keep`."""
        self._load()  # the file as it is now: another process may have rotated
        gone = sorted(v for v in self._texts if v < self._current and v not in keep)
        if gone:
            texts = {v: t for v, t in self._texts.items() if v not in gone}
            write_private(self._path, _dump(self._current, texts), what=_WHAT, replace=True)
            self._texts = texts
            self._keys = {v: k for v, k in self._keys.items() if v not in gone}
        return gone

    def _kek(self, version: int) -> Kek:
        kek = self._keys.get(version)
        if kek is None:
            # Another process may have rotated the file since we read it.
            self._load()
            kek = self._keys.get(version)
            if kek is None:
                raise KeyVaultError(f"the key file {self._path} has no KEK version {version}; "
                                    "is this the key file of this data directory?")
        return kek

    def _load(self) -> None:
        raw = read_private(self._path, what=_WHAT)
        try:
            doc = json.loads(raw)
            if doc.get("format") != _FORMAT:
                raise ValueError(doc.get("format"))
            texts = {int(v): str(t) for v, t in doc["keys"].items()}
            current = int(doc["current"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyVaultError(f"the key file {self._path} is not a pacte key file") from None
        if current not in texts:
            raise KeyVaultError(f"the key file {self._path} is damaged (no current key)")
        self._keys = {v: self._keys.get(v) or Kek.from_text(t) for v, t in texts.items()}
        self._texts = texts
        self._current = current


def _dump(current: int, texts: dict[int, str]) -> bytes:
    doc = {"format": _FORMAT, "current": current,
           "keys": {str(v): t for v, t in sorted(texts.items())}}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


class EnvKeyProvider:
    """KEKs derived from one master secret (`PACTE_MASTER_KEY`: base64 of 32 bytes).

    Version v is HKDF-SHA256(secret, info=label || v), so every version can be
    re-derived and nothing needs storing; rotation just moves to the next version.
    Being stateless, this provider does not remember rotations across restarts: the
    key vault records the current version and asks for it explicitly when wrapping.
    """

    def __init__(self, secret: str, *, current_version: int = 1) -> None:
        if current_version < 1:
            raise KeyVaultError("KEK versions start at 1")
        self._secret = MasterSecret(secret)
        self._current = current_version
        self._keks: dict[int, Kek] = {}

    def __repr__(self) -> str:
        return f"EnvKeyProvider(current_version={self._current})"

    @property
    def current_version(self) -> int:
        return self._current

    def wrap(self, plaintext_key: bytes, *, version: int | None = None) -> tuple[int, bytes]:
        v = self._current if version is None else version
        return v, self._kek(v).wrap(plaintext_key, version=v)

    def unwrap(self, version: int, wrapped: bytes) -> bytes:
        return self._kek(version).unwrap(wrapped, version=version)

    def rotate(self) -> int:
        self._current += 1
        return self._current

    def _kek(self, version: int) -> Kek:
        if version < 1:
            raise KeyVaultError(f"no KEK version {version}")
        kek = self._keks.get(version)
        if kek is None:
            kek = self._keks[version] = self._secret.kek(version)
        return kek


def provider_from_env_or_file(path: Path) -> KeyProvider:
    """`EnvKeyProvider` when PACTE_MASTER_KEY is set (it wins), else the key file at `path`."""
    secret = os.environ.get(ENV_VAR)
    if secret:
        return EnvKeyProvider(secret)
    return FileKeyProvider(path)
