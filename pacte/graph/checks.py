"""Checks on what callers send, shared by the door and the features behind it.

Each refuses bad input with one `InputError` whose message never repeats the value: a
caller may have put a personal one there.
"""

from __future__ import annotations

from datetime import datetime

from pacte.clock import EARLIEST, LATEST
from pacte.errors import InputError
from pacte.graph.store import Cursor, Value, decode_cursor, encode_cursor

__all__ = ["MAX_PAGE", "check_date", "check_email", "check_id", "check_text", "encode_id_cursor",
           "id_cursor", "page_size", "same_email"]

MAX_PAGE = 100
_MAX_ID = 100


def check_id(value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise InputError("ids are 1 to 100 characters")
    # check_text("an id", value), inline: every read checks its ids.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("an id is not valid text (it holds a lone surrogate)") from None


def check_text(what: str, value: str) -> None:
    """Refuse text that is not valid Unicode: a lone surrogate cannot be encoded, so it
    could be neither sealed, hashed nor named (as a pseudonym) in the audit trail."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid text (it holds a lone surrogate)") from None


def check_email(email: str) -> None:
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email:
        raise InputError("not an email address")


def check_date(value: str) -> None:
    try:
        year = datetime.strptime(value, "%Y-%m-%d").year
    except ValueError as exc:
        raise InputError("birth_date must be a date like 1990-04-17") from exc
    if not EARLIEST.year <= year < LATEST.year:
        raise InputError(f"birth_date must be from {EARLIEST.year} to {LATEST.year - 1}")


def same_email(stored: Value, given: str) -> bool:
    from pacte.crypto import normalise_email

    return isinstance(stored, str) and normalise_email(stored) == normalise_email(given)


def page_size(first: int) -> int:
    if not isinstance(first, int) or first < 0 or first > MAX_PAGE:
        raise InputError(f"first must be between 0 and {MAX_PAGE}")
    return first


def id_cursor(after: str | None) -> str | None:
    if after is None:
        return None
    return decode_cursor(after).id


def encode_id_cursor(customer_id: str) -> str:
    return encode_cursor(Cursor(0, customer_id))
