"""Signed erasure receipts (G8): proof that a subject's keys and records were destroyed.

A receipt holds no personal data: the pseudonymous subject reference, counts of what
was destroyed by kind, who asked, the audit entry that records it, and when. It is
signed over its RFC 8785 form with the same Ed25519 key as the checkpoints, under a
type tag of its own, and stays verifiable after the subject's data keys are gone.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import rfc8785

from pacte.audit.entry import format_time
from pacte.clock import utcnow
from pacte.crypto.signing import SigningKey, verify_signature
from pacte.errors import InputError

__all__ = ["RECEIPT_TYPE", "erasure_receipt", "verify_receipt"]

RECEIPT_TYPE = "pacte.erasure-receipt/v1"
_SIGNED = ("type", "subject", "destroyed", "requested_by", "audit_seq", "time", "key_id")


def erasure_receipt(
    signer: SigningKey,
    *,
    subject_ref: str,
    destroyed: Mapping[str, int],
    requested_by: str,
    audit_seq: int,
    now: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """A signed receipt: JSON-able, with `public_key` and `signature` in base64."""
    if not isinstance(subject_ref, str) or not subject_ref:
        raise InputError("a receipt needs a subject reference")
    if not isinstance(requested_by, str) or not requested_by:
        raise InputError("a receipt needs the name of who asked")
    if not isinstance(audit_seq, int) or isinstance(audit_seq, bool) or audit_seq < 0:
        raise InputError("audit_seq must be a whole number >= 0")
    counts: dict[str, int] = {}
    for kind, n in destroyed.items():
        if not isinstance(kind, str) or not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError("destroyed must map kinds to counts >= 0")
        counts[kind] = n
    body: dict[str, Any] = {
        "type": RECEIPT_TYPE,
        "subject": subject_ref,
        "destroyed": counts,
        "requested_by": requested_by,
        "audit_seq": audit_seq,
        "time": format_time(now()),
        "key_id": signer.key_id,
    }
    signature = signer.sign(rfc8785.dumps(body))
    return {
        **body,
        "public_key": base64.b64encode(signer.public_key).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify_receipt(receipt: Mapping[str, Any], *, public_key: bytes | None = None) -> bool:
    """True when the receipt is well formed and its signature verifies; never raises.

    Without `public_key` the key carried by the receipt is used, which proves only
    integrity; pass the operator's known key to prove who signed it.
    """
    try:
        if receipt.get("type") != RECEIPT_TYPE or set(receipt) != {*_SIGNED, "public_key",
                                                                  "signature"}:
            return False
        body = {k: receipt[k] for k in _SIGNED}
        key = public_key if public_key is not None else base64.b64decode(
            receipt["public_key"], validate=True)
        signature = base64.b64decode(receipt["signature"], validate=True)
        return verify_signature(key, signature, rfc8785.dumps(body))
    except (TypeError, ValueError, KeyError, AttributeError, binascii.Error,
            rfc8785.CanonicalizationError):
        return False
