"""Identifiers and their normal forms: the values two records must share to match.

An identifier is a (kind, normalised value) pair. Emails are trimmed, NFKC and
lowercased; phones become E.164; external ids (CRM number, loyalty card, order id,
device serial) are NFKC, trimmed, upper-cased and stripped of inner spaces and
dashes, since exports print the same card as "LC-0012 345" and "lc0012345".
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

from pacte.crypto.blind_index import normalise_email, normalise_phone
from pacte.errors import InputError

__all__ = ["IDENTIFIER_KINDS", "PERSONAL_KINDS", "Identifier", "normalise_identifier"]

# Every kind of identifier a record may carry, in the order they are tried.
IDENTIFIER_KINDS: tuple[str, ...] = ("crm", "email", "phone", "loyalty", "order", "device")
# The kinds that name a person by themselves: a record carrying one of them and
# matching nobody is a new customer; order ids and device serials only point at one.
PERSONAL_KINDS: frozenset[str] = frozenset({"crm", "email", "phone", "loyalty"})


class Identifier(NamedTuple):
    kind: str
    value: str  # normalised; never stored, only its keyed token is


def normalise_identifier(kind: str, value: str, *, default_country_code: str = "+1"
                         ) -> Identifier:
    """The identifier in normal form; InputError when it is not one of its kind."""
    if kind not in IDENTIFIER_KINDS:
        raise InputError(f"unknown identifier kind {kind!r}")
    # NFKC leaves ASCII text as it is (most identifiers): only the others pay for it.
    text = (value if value.isascii() else unicodedata.normalize("NFKC", value)).strip()
    if not text:
        raise InputError(f"empty {kind}")
    if kind == "email":
        email = normalise_email(text)
        local, at, domain = email.rpartition("@")
        if not at or not local or "." not in domain or " " in email:
            raise InputError("not an email address")
        return Identifier(kind, email)
    if kind == "phone":
        return Identifier(kind, normalise_phone(text, default_country_code=default_country_code))
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) > 200:
        raise InputError(f"{kind} is too long (200 characters at most)")
    return Identifier(kind, compact)
