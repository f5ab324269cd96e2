"""Blind index: exact-match lookups on encrypted fields (email, phone) without decrypting.

A token is HMAC-SHA256(index key of the field, normalised value), truncated to
`TOKEN_BYTES` = 4 bytes (32 bits). The index key is per field and derived from the
vault secret, so a token from one field says nothing about another, and nobody
without the vault can compute a token to test a guess.

Why 32 bits. A lookup returns every node whose token matches; the caller decrypts
those candidates and keeps only the real match, so a collision costs one extra
decryption, never a wrong answer. With n values the expected number of colliding
pairs is about n^2 / 2^(b+1):

    n = 1,000,000 customers, b = 32:  10^12 / 2^33  ~  116 colliding pairs

i.e. about one lookup in 4,300 (n / 2^b) decrypts one extra candidate. Shorter
tokens leak less: the index table becomes a less exact equality fingerprint, and if
an index key ever leaked, a dictionary attack on a 32-bit token of a phone number
(about 10^10 possible national numbers) still leaves a few candidates per token
rather than the one answer a full-length HMAC gives. 32 bits keeps false candidates
negligible up to tens of millions of customers (n / 2^b = 2.3% extra at 100M).

Values are normalised first so that equivalent spellings match: see
`normalise_email` and `normalise_phone`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping

from pacte.crypto.vault import KeyVault
from pacte.errors import InputError

__all__ = ["KEYED_TOKEN_BYTES", "TOKEN_BYTES", "BlindIndex", "normalise_email", "normalise_phone",
           "normalise_text"]

TOKEN_BYTES = 4
KEYED_TOKEN_BYTES = 16

_DIGITS = frozenset("0123456789")
_PHONE_SEPARATORS = str.maketrans("", "", "-().")


def normalise_text(value: str) -> str:
    """NFKC and trimmed: the normaliser of fields without a specific one."""
    return unicodedata.normalize("NFKC", value).strip()


def normalise_email(value: str) -> str:
    """Trimmed, NFKC, lowercased. The local part is lowercased too: providers that treat
    it as case-sensitive are vanishingly rare, and a missed match is worse than a
    candidate that decryption rejects."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def normalise_phone(value: str, *, default_country_code: str = "+1") -> str:
    """E.164 ('+14155550123'): spaces, dashes, dots and parentheses removed.

    A number without a leading '+' is national and gets `default_country_code`; its
    trunk prefix is dropped (a leading '0', or for '+1' an 11-digit number's leading
    '1'). InputError for anything that is not then '+' and 7 to 15 digits.
    """
    if not _valid_country_code(default_country_code):
        raise InputError("default_country_code must look like '+1' or '+44'")
    if not isinstance(value, str):
        raise InputError("a phone number must be text")
    compact = "".join(unicodedata.normalize("NFKC", value).split()).translate(_PHONE_SEPARATORS)
    if compact.startswith("+"):
        number = compact
    else:
        if not compact or not set(compact) <= _DIGITS:
            raise InputError("not a phone number")
        nanp_with_one = default_country_code == "+1" and len(compact) == 11
        if compact[0] == "0" or (nanp_with_one and compact[0] == "1"):
            compact = compact[1:]  # the trunk prefix is not part of the E.164 number
        number = default_country_code + compact
    digits = number[1:]
    if not (7 <= len(digits) <= 15 and set(digits) <= _DIGITS and digits[0] != "0"):
        raise InputError("not a phone number")
    return number


def _valid_country_code(code: str) -> bool:
    return (isinstance(code, str) and 2 <= len(code) <= 4 and code[0] == "+"
            and set(code[1:]) <= _DIGITS and code[1] != "0")


class BlindIndex:
    """Computes blind-index tokens with the vault's per-field index keys."""

    def __init__(self, vault: KeyVault, *, default_country_code: str = "+1",
                 normalisers: Mapping[str, Callable[[str], str]] | None = None) -> None:
        if not _valid_country_code(default_country_code):
            raise InputError("default_country_code must look like '+1' or '+44'")
        self._vault = vault
        cc = default_country_code

        def phone(value: str) -> str:
            return normalise_phone(value, default_country_code=cc)

        self._normalisers: dict[str, Callable[[str], str]] = {
            "email": normalise_email, "phone": phone, **(normalisers or {})}

    def __repr__(self) -> str:
        return f"BlindIndex({self._vault!r})"

    def normalise(self, field: str, value: str) -> str:
        """The value as it is indexed (InputError when it cannot be, e.g. a garbled phone)."""
        if not isinstance(value, str):
            raise InputError(f"{field} must be text")
        return self._normalisers.get(field, normalise_text)(value)

    def token(self, field: str, value: str) -> bytes:
        """The `TOKEN_BYTES`-byte token of `value` in the index of `field`."""
        key = self._vault.index_key(field)
        return key.mac(self.normalise(field, value).encode("utf-8"))[:TOKEN_BYTES]

    def keyed_token(self, namespace: str, value: str) -> bytes:
        """A 16-byte token of an already normalised `value` under the key of `namespace`.

        For identifiers that have no stored ciphertext to confirm a candidate against
        (loyalty cards, order ids, ingestion row keys): a 4-byte token would make
        collisions wrong answers, and 128 bits makes them practically impossible.
        """
        return self._vault.index_key(namespace).mac(value.encode("utf-8"))[:KEYED_TOKEN_BYTES]
