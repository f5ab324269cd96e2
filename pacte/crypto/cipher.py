"""`FieldCipher`: the safe recipe for encrypting one personal field. Callers use only this.

Format of a sealed field (all integers big-endian):

    offset  size  content
    0       1     format version (1)
    1       1     algorithm id (1 = AES-256-GCM, key = HKDF-SHA256(DEK, label || field))
    2       4     version of the customer's data key (DEK) that sealed it
    6       12    random nonce
    18      n+16  ciphertext and GCM tag

The associated data is the 6 header bytes followed by customer id, node id and field
name, each UTF-8 and prefixed with its length (4 bytes). A sealed field therefore
opens only for the customer, node and field it was sealed for, and a header edited
to claim another version or algorithm fails authentication rather than being obeyed.

Random 96-bit nonces are safe here because each key (one per customer and field)
seals few values: the 2^-32 collision budget of NIST SP 800-38D is about 2^32
encryptions per key.

Every failure to open — tampering, truncation, unknown format, a wrong or destroyed
key, garbage — raises the same `DecryptionError()` with the same message: a reason
would be an oracle.

Speed: decrypting is an AES-GCM call plus two dictionary lookups. Derived field keys
(`AESGCM` objects) live in a bounded LRU over customers, per field and DEK version; it is
emptied by the vault whenever it drops keys (any destruction, see
`KeyVault.on_flush`), so a destroyed key is never used again from the cache (G5).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

from pacte.crypto._keys import NONCE_SIZE, Aead, field_aead
from pacte.crypto.vault import KeyVault
from pacte.errors import DecryptionError, InputError, KeyVaultError

__all__ = ["ALG_AES256GCM_HKDF", "FORMAT_VERSION", "HEADER_SIZE", "FieldCipher"]

FORMAT_VERSION = 1
ALG_AES256GCM_HKDF = 1
HEADER_SIZE = 6
_BODY = HEADER_SIZE + NONCE_SIZE

# One cached field key: (aead, header, header || len(customer) || customer,
# len(field) || field). The two byte strings are the fixed parts of the associated data.
_Entry = tuple[Aead, bytes, bytes, bytes]
# Per customer: field -> entry of the current DEK, and (field, header) -> entry of an
# older DEK version still found in stored data.
_Fields = dict[str | tuple[str, bytes], _Entry]

_NODE_SEGMENTS = 65536


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


class FieldCipher:
    """Encrypts and decrypts personal fields with per-customer, per-field keys."""

    def __init__(self, vault: KeyVault, *, cache_size: int = 4096,
                 _nonce: Callable[[int], bytes] = os.urandom) -> None:
        # `_nonce` exists for known-answer tests only: a fixed nonce in production would
        # destroy GCM's security, hence the private name.
        if cache_size < 1:
            raise InputError("cache_size must be at least 1")
        self._vault = vault
        self._cache_size = cache_size
        # LRU over customers; each holds the derived keys of the fields used so far.
        self._cache: OrderedDict[str, _Fields] = OrderedDict()
        self._epoch = vault.cache_epoch
        # node id -> its length-prefixed UTF-8, the per-node part of the associated data.
        # Node ids are not secret (the store keeps them in clear); encoding one costs a
        # tenth of a decryption, and a read opens several fields of the same node.
        self._nodes: dict[str, bytes] = {}
        self._nonce = _nonce
        self._lock = threading.Lock()
        # Pushed rather than polled: a check per call would cost a tenth of a decryption.
        vault.on_flush(self._clear)

    def __repr__(self) -> str:
        return f"FieldCipher({self._vault!r})"

    def encrypt(self, customer_id: str, node_id: str, field: str, plaintext: bytes) -> bytes:
        """Seal `plaintext` for this customer, node and field; creates the customer's DEK if new.

        KeyVaultError if the customer's keys were destroyed (an erased customer stays erased).
        """
        if not isinstance(plaintext, bytes | bytearray | memoryview):
            raise InputError("plaintext must be bytes")
        for name, value in (("customer_id", customer_id), ("node_id", node_id),
                            ("field", field)):
            if not isinstance(value, str) or not value:
                raise InputError(f"{name} must be a non-empty string")
        fields = self._cache.get(customer_id)
        entry = fields.get(field) if fields is not None else None
        if entry is None:
            entry = self._load(customer_id, field, None)
        aead, header, prefix, suffix = entry
        nonce = self._nonce(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise InputError("the nonce source must return 12 bytes")
        segment = self._nodes.get(node_id)
        if segment is None:
            segment = self._node_segment(node_id)
        ad = prefix + segment + suffix
        return header + nonce + aead.encrypt(nonce, bytes(plaintext), ad)

    def decrypt(self, customer_id: str, node_id: str, field: str, blob: bytes) -> bytes:
        """Open a sealed field; DecryptionError (one opaque message) on any failure."""
        try:
            # Subscripts, not .get: this is the hottest path of a read, and a miss is rare.
            try:
                entry: _Entry | None = self._cache[customer_id][field]
            except KeyError:
                entry = None
            # The cached header is a valid one, so a match also validates format and alg.
            if entry is None or blob[:HEADER_SIZE] != entry[1]:
                entry = self._for_header(customer_id, field, blob)
            else:
                # Not contextlib.suppress: that is an object per call on the hottest path.
                try:  # noqa: SIM105
                    self._cache.move_to_end(customer_id)
                except KeyError:  # evicted by another thread meanwhile; the entry still works
                    pass
            segment = self._nodes.get(node_id)
            if segment is None:
                segment = self._node_segment(node_id)
            return entry[0].decrypt(blob[HEADER_SIZE:_BODY], blob[_BODY:],
                                    entry[2] + segment + entry[3])
        except Exception:
            # Deliberately broad: whatever went wrong, the caller learns only that it failed.
            raise DecryptionError() from None

    def _node_segment(self, node_id: str) -> bytes:
        segment = _lp(node_id.encode("utf-8"))
        if len(self._nodes) >= _NODE_SEGMENTS:
            self._nodes.clear()  # ids are cheap to re-encode; a crude bound is enough
        self._nodes[node_id] = segment
        return segment

    def _for_header(self, customer_id: str, field: str, blob: bytes) -> _Entry:
        header = bytes(blob[:HEADER_SIZE])
        if (len(header) != HEADER_SIZE or header[0] != FORMAT_VERSION
                or header[1] != ALG_AES256GCM_HKDF):
            raise DecryptionError()
        fields = self._cache.get(customer_id)
        entry = fields.get((field, header)) if fields is not None else None
        if entry is None:
            entry = self._load(customer_id, field, int.from_bytes(header[2:], "big"))
        return entry

    def _load(self, customer_id: str, field: str, version: int | None) -> _Entry:
        """Derive and cache the field key of the current DEK, or of DEK `version`."""
        # Read the epoch before fetching keys: if a destruction lands meanwhile, the entry
        # built from the fetched key serves this one call but is never cached.
        epoch = self._vault.cache_epoch
        if version is None:
            key = current = self._vault.data_key(customer_id, create=True)
        else:
            try:
                current = self._vault.data_key(customer_id)
                key = self._vault.data_key(customer_id, version=version)
            except KeyVaultError:
                raise DecryptionError() from None
        header = bytes((FORMAT_VERSION, ALG_AES256GCM_HKDF)) + key.version.to_bytes(4, "big")
        entry = (field_aead(key, field), header,
                 header + _lp(customer_id.encode("utf-8")), _lp(field.encode("utf-8")))
        slot: str | tuple[str, bytes] = field if key is current else (field, header)
        with self._lock:
            if epoch == self._vault.cache_epoch == self._epoch:
                fields = self._cache.get(customer_id)
                if fields is None:
                    fields = self._cache[customer_id] = {}
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
                fields[slot] = entry
        return entry

    def _clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._epoch = self._vault.cache_epoch
