"""Fixtures for the crypto tests: a key file, a vault and a cipher in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pacte.crypto import BlindIndex, FieldCipher, FileKeyProvider, KeyVault

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"


@pytest.fixture
def provider(tmp_path: Path) -> FileKeyProvider:
    return FileKeyProvider.create(tmp_path / "master.key")


@pytest.fixture
def vault(tmp_path: Path, provider: FileKeyProvider) -> Iterator[KeyVault]:
    v = KeyVault.create(tmp_path / "keys.db", provider)
    yield v
    v.close()


@pytest.fixture
def cipher(vault: KeyVault) -> FieldCipher:
    return FieldCipher(vault)


@pytest.fixture
def index(vault: KeyVault) -> BlindIndex:
    return BlindIndex(vault)
