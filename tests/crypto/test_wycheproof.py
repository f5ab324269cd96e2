"""Wycheproof known-answer and adversarial vectors, run through `pacte.crypto._keys`.

The primitives are called exactly as pacte calls them: `aead(key)` for AES-GCM,
`hkdf_sha256` for HKDF, `hmac_sha256` (then truncation, as the blind index does) for
HMAC, and `verify_ed25519` for signatures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from pacte.crypto._keys import aead, hkdf_sha256, hmac_sha256, verify_ed25519

from .conftest import VECTORS

WYCHEPROOF = VECTORS / "wycheproof"


def _cases(name: str) -> list[Any]:
    path = WYCHEPROOF / name
    if not path.exists():
        return [pytest.param(None, None, id="absent",
                             marks=pytest.mark.skip(reason=f"Wycheproof vectors not found at "
                                                    f"{path} (expected ../shared/vectors)"))]
    doc = json.loads(Path(path).read_text())
    out = []
    for group in doc["testGroups"]:
        for test in group["tests"]:
            out.append(pytest.param(group, test, id=f"tc{test['tcId']}"))
    assert out, f"{path} holds no tests"
    return out


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize(("group", "test"), _cases("aes_gcm_test.json"))
def test_aes_gcm(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, aad = _h(test["key"]), _h(test["iv"]), _h(test["aad"])
    msg, ct, tag = _h(test["msg"]), _h(test["ct"]), _h(test["tag"])
    valid = test["result"] == "valid"
    if not 8 <= len(iv) <= 128:
        # pyca/cryptography refuses these nonce sizes outright; pacte only ever uses 12.
        with pytest.raises(ValueError):
            aead(key).decrypt(iv, ct + tag, aad)
        return
    if valid:
        assert aead(key).encrypt(iv, msg, aad) == ct + tag
        assert aead(key).decrypt(iv, ct + tag, aad) == msg
    else:
        with pytest.raises((InvalidTag, ValueError)):
            aead(key).decrypt(iv, ct + tag, aad)


def test_aes_gcm_covers_pacte_parameters() -> None:
    """The groups pacte's own parameters use (256-bit key, 96-bit nonce) must be present."""
    path = WYCHEPROOF / "aes_gcm_test.json"
    if not path.exists():
        pytest.skip(f"Wycheproof vectors not found at {path}")
    doc = json.loads(path.read_text())
    ours = [t for g in doc["testGroups"] if g["keySize"] == 256 and g["ivSize"] == 96
            for t in g["tests"]]
    assert any(t["result"] == "valid" for t in ours)
    assert any(t["result"] == "invalid" for t in ours)


@pytest.mark.parametrize(("group", "test"), _cases("hkdf_sha256_test.json"))
def test_hkdf_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    ikm, salt, info = _h(test["ikm"]), _h(test["salt"]), _h(test["info"])
    if test["result"] == "valid":
        assert hkdf_sha256(ikm, info=info, length=test["size"], salt=salt) == _h(test["okm"])
    else:
        with pytest.raises(ValueError):
            hkdf_sha256(ikm, info=info, length=test["size"], salt=salt)


@pytest.mark.parametrize(("group", "test"), _cases("hmac_sha256_test.json"))
def test_hmac_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    tag = _h(test["tag"])
    computed = hmac_sha256(_h(test["key"]), _h(test["msg"]))[: group["tagSize"] // 8]
    assert (computed == tag) is (test["result"] == "valid")


@pytest.mark.parametrize(("group", "test"), _cases("ed25519_test.json"))
def test_ed25519(group: dict[str, Any], test: dict[str, Any]) -> None:
    public_key = _h(group["publicKey"]["pk"])
    ok = verify_ed25519(public_key, _h(test["sig"]), _h(test["msg"]))
    assert ok is (test["result"] == "valid")
