"""The key checkpoints must be signed with: pinned by the verifier, followed through rotations.

Checkpoints are checked against a pinned key: the one the caller gives (a public key
or its SHA-256 fingerprint), else the trail's own signer's. Key rotations are entries
signed by both keys (`pacte.audit.rotation`); the verifier follows them, and the
pinned key must be one of the chain.

The key in force is followed as the walk goes: a checkpoint of `size` entries is
checked when every entry below `size`, rotations included, has been read. Which key
the chain starts from is only known at the end (a pin may name a key rotated to
later), so whether the pin is in the chain is checked last (`KeyChain.check_pin`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pacte.audit.checkpoint import Checkpoint, key_fingerprint
from pacte.audit.findings import BAD_SIGNATURE, UNTRUSTED_KEY, Problem, short_key
from pacte.audit.rotation import Rotation
from pacte.errors import InputError

__all__ = ["KeyChain", "parse_key"]


def parse_key(text: str) -> tuple[bytes | None, str | None]:
    """A pinned key given as text: (public key, None) for the base64 of a raw Ed25519
    public key, (None, fingerprint) for the 64 hex digits of its SHA-256."""
    text = text.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return None, text.lower()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise InputError("a key is the base64 of a 32-byte Ed25519 public key, or the 64 "
                         "hex digits of its SHA-256 fingerprint")
    return key, None


class KeyChain:
    """The signing keys met so far, in order, and the one in force."""

    def __init__(self, *, public_key: bytes | None, fingerprint: str | None,
                 pinned: bool) -> None:
        self.keys: list[bytes] = []
        self.key: bytes | None = None
        self.first_signed: tuple[int, str] = (0, "checkpoints")
        self.public_key = public_key
        self.fingerprint = fingerprint
        self.pinned = pinned
        self.pin: bytes | None = None
        # Rotation entries read by the walk and not yet followed: (seq, body, the hash
        # the entry chains from).
        self.rotations: list[tuple[int, dict[str, Any], bytes]] = []

    def check(self, cp: Checkpoint, table: str) -> None:
        """`cp` is signed by the key in force (the first one met starts the chain)."""
        if self.key is None:
            self.key = bytes(cp.public_key)
            self.keys.append(self.key)
            self.first_signed = (cp.size, table)
        if cp.public_key != self.key:
            raise Problem(UNTRUSTED_KEY, None,
                          f"the checkpoint at size {cp.size} is signed by key "
                          f"{short_key(cp.public_key)}, but the key in force is "
                          f"{short_key(self.key)} (no signed rotation between them)",
                          table=table)
        if not cp.verify(self.key):
            raise Problem(BAD_SIGNATURE, None, f"the signature of the checkpoint at size "
                          f"{cp.size} signed {cp.time} does not verify", table=table)

    def check_trusted(self, trusted: Checkpoint) -> None:
        try:
            self.check(trusted, "the trusted checkpoint")
        except Problem as p:
            raise Problem(p.reason, None, f"the trusted checkpoint: {p.detail}",
                          table="the trusted checkpoint") from None

    def follow(self, size: int) -> None:
        """Apply the rotations read so far below `size`, in order."""
        while self.rotations and self.rotations[0][0] < size:
            self._rotate(*self.rotations.pop(0))

    def _rotate(self, seq: int, doc: dict[str, Any], after: bytes) -> None:
        rotation = Rotation.parse(seq, after, doc)
        if rotation is None:
            raise Problem(BAD_SIGNATURE, seq, f"the key rotation at entry {seq} is not "
                          "signed by both keys")
        if self.key is None:
            self.key = rotation.old_key
            self.keys.append(self.key)
            self.first_signed = (seq, "entries")
        elif rotation.old_key != self.key:
            raise Problem(UNTRUSTED_KEY, seq, f"the key rotation at entry {seq} hands over "
                          f"from key {short_key(rotation.old_key)}, not from the key in "
                          f"force {short_key(self.key)}")
        self.key = rotation.new_key
        self.keys.append(self.key)

    def check_pin(self) -> None:
        """The pinned key is one of the chain (without a pin: the first one, reported)."""
        if self.key is None:
            return  # nothing signed yet
        if not self.pinned:
            self.pin = self.keys[0]  # trusted on first use, and the report says so
            return
        pin: bytes | None
        if self.public_key is not None:
            pin = self.public_key
        else:
            pin = next((k for k in self.keys if key_fingerprint(k) == self.fingerprint), None)
        self.pin = pin if pin is not None and pin in self.keys else None
        if self.pin is None:
            wanted = short_key(self.public_key) if self.public_key is not None \
                else (self.fingerprint or "")[:16]
            where, table = self.first_signed
            what = f"entry {where}" if table == "entries" else f"the checkpoint at size {where}"
            raise Problem(UNTRUSTED_KEY, None,
                          f"{what} is signed by key {short_key(self.keys[0])}, and the pinned "
                          f"key {wanted} is not among the keys the trail rotated through "
                          f"({', '.join(short_key(k) for k in self.keys)})",
                          table="checkpoints" if table != "entries" else "entries")
