"""The public surface of pacte.crypto, and the rule that raw keys stay in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pacte.crypto

EXPECTED = {
    "BlindIndex", "EnvKeyProvider", "FieldCipher", "FileKeyProvider", "KeyProvider",
    "KeyVault", "SigningKey", "TokenKey", "normalise_email", "normalise_phone",
    "provider_from_env_or_file", "verify_signature",
}


def test_all_matches_exports() -> None:
    assert set(pacte.crypto.__all__) == EXPECTED
    public = {n for n in vars(pacte.crypto) if not n.startswith("_")}
    modules = {"blind_index", "cipher", "provider", "signing", "vault", "neo4j_vault",
               "sqlite_vault", "vault_rows", "vault_copy",
               "annotations"}
    assert public - modules == EXPECTED


def test_only_keys_module_imports_hazmat() -> None:
    package = Path(pacte.crypto.__file__).parent
    offenders = []
    for source in package.rglob("*.py"):
        if source.name == "_keys.py":
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(n.startswith("cryptography") for n in names):
                offenders.append(source.name)
    assert offenders == []
