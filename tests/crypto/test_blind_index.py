"""Blind index: normalisation, determinism, per-field keys, documented token length."""

from __future__ import annotations

import pytest

from pacte.crypto import BlindIndex, KeyVault, normalise_email, normalise_phone
from pacte.crypto.blind_index import TOKEN_BYTES
from pacte.errors import InputError


@pytest.mark.parametrize(("raw", "expected"), [
    ("  Jeanne.Martin@Example.ORG \n", "jeanne.martin@example.org"),
    ("ｊｅａｎｎｅ@example.org", "jeanne@example.org"),  # fullwidth, folded by NFKC
    ("jeanne@example.org", "jeanne@example.org"),
])
def test_normalise_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 (415) 555-0123", "+14155550123"),
    ("415.555.0123", "+14155550123"),
    ("1-415-555-0123", "+14155550123"),
    ("(415) 555 0123", "+14155550123"),
    ("+44 20 7946 0958", "+442079460958"),
    ("＋３３ ６ １２ ３４ ５６ ７８", "+33612345678"),  # fullwidth digits and plus
])
def test_normalise_phone(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


def test_normalise_phone_default_country() -> None:
    assert normalise_phone("06 12 34 56 78", default_country_code="+33") == "+33612345678"
    assert normalise_phone("020 7946 0958", default_country_code="+44") == "+442079460958"


@pytest.mark.parametrize("garbage", ["", "   ", "call me", "+", "+0123456789", "12ab34567",
                                     "+1 415 555 0123 ext 9", "+1234", "+1234567890123456",
                                     "٤١٥٥٥٥٠١٢٣"])
def test_normalise_phone_rejects_garbage(garbage: str) -> None:
    with pytest.raises(InputError):
        normalise_phone(garbage)


def test_bad_default_country_code() -> None:
    with pytest.raises(InputError):
        normalise_phone("4155550123", default_country_code="1")


def test_tokens(index: BlindIndex) -> None:
    a = index.token("email", "Jeanne@Example.org")
    assert len(a) == TOKEN_BYTES == 4
    assert a == index.token("email", "  jeanne@example.ORG")
    assert a != index.token("email", "jeanne2@example.org")
    assert a != index.token("contact", "jeanne@example.org")  # per-field keys
    assert index.token("phone", "(415) 555-0123") == index.token("phone", "+1 415 555 0123")
    with pytest.raises(InputError):
        index.token("phone", "not a number")


def test_tokens_are_keyed_by_the_vault(vault: KeyVault, tmp_path: object) -> None:
    from pathlib import Path

    from pacte.crypto import FileKeyProvider
    root = Path(str(tmp_path)) / "other"
    root.mkdir()
    with KeyVault.create(root / "keys.db", FileKeyProvider.create(root / "k")) as other:
        assert (BlindIndex(vault).token("email", "a@b.c")
                != BlindIndex(other).token("email", "a@b.c"))
    with pytest.raises(InputError):
        BlindIndex(vault, default_country_code="33")
