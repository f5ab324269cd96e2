"""Principals (apps and people calling pacte) and their API keys.

A key is shown once, when created; only its SHA-256 is stored, as a blind-index
entry so authentication is one indexed lookup. Keys are long random strings, so an
unsalted hash is safe (there is nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pacte.errors import InputError, Unauthenticated
from pacte.graph.key_cache import KeyCache, RevocationStamp
from pacte.graph.policy import ROLES, Policy
from pacte.graph.store import IndexEntry, Node, Store, WriteBatch

__all__ = ["KEY_INDEX", "Principal", "PrincipalRegistry"]

KEY_INDEX = "Principal.key"
_PREFIX = "pk_"


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    name: str
    role: str
    purposes: tuple[str, ...]
    revoked: bool = False
    created_at: int | None = None  # microseconds since the epoch

    def may_claim(self, purpose: str) -> bool:
        return purpose in self.purposes


def _key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _principal(node: Node) -> Principal:
    purposes = node.props.get("purposes")
    return Principal(
        id=node.id,
        name=str(node.props.get("name", "")),
        role=str(node.props.get("role", "")),
        purposes=tuple(json.loads(purposes)) if isinstance(purposes, str) else (),
        revoked=node.props.get("revoked_at") is not None,
        created_at=_micros(node.props.get("created_at")),
    )


def _micros(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# The last use of a key is kept to the day, in a node of its own: once a day per key,
# not a write per request.
_DAY_US = 86_400_000_000
_USE_KIND = "PrincipalUse"
_USE_PREFIX = "pu_"


class PrincipalRegistry:
    """Create, list, revoke and authenticate principals kept in the store."""

    def __init__(self, store: Store, policy: Policy, *,
                 stamp: RevocationStamp | None = None) -> None:
        """With `stamp` (shared by every process on the store), authentication answers
        keys it has seen without reading the store (see pacte.graph.key_cache)."""
        self._store = store
        self._policy = policy
        self._cache = KeyCache(stamp) if stamp is not None else None
        # principal id -> the day of its last use noted by this process: after the first
        # request of a day, authentication reads nothing more for it.
        self._noted: dict[str, int] = {}

    def create(self, *, name: str, role: str, purposes: Iterable[str], now: int,
               before_write: Callable[[Principal], object] | None = None
               ) -> tuple[Principal, str]:
        """A new principal and its API key (the only time the key is available).

        `before_write` sees the principal once it is checked and before it is stored: the
        runtime puts it on record there, so no principal exists that the trail does not
        name (G6).
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("a principal needs a name of 1 to 100 characters")
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        claimed = tuple(dict.fromkeys(purposes))
        for p in claimed:
            if self._policy.get(p) is None:
                raise InputError(f"unknown purpose {p!r}; see `pacte purposes`")
        key = _PREFIX + secrets.token_urlsafe(32)
        pid = "pr_" + secrets.token_hex(6)
        node = Node(
            "Principal",
            pid,
            {"name": name, "role": role, "purposes": json.dumps(list(claimed)),
             "key_hash": _key_hash(key).hex(), "created_at": now, "revoked_at": None},
        )
        if before_write is not None:
            before_write(_principal(node))
        self._store.write(WriteBatch(nodes=[node], index=[IndexEntry(KEY_INDEX,
                                                                     _key_hash(key), pid)]))
        return _principal(node), key

    def list(self) -> list[Principal]:
        out: list[Principal] = []
        after: str | None = None
        while page := self._store.scan_nodes("Principal", after=after, limit=500):
            out.extend(_principal(n) for n in page)
            after = page[-1].id
        return out

    def get(self, principal_id: str) -> Principal | None:
        node = self._store.get_nodes([principal_id]).get(principal_id)
        return _principal(node) if node is not None and node.kind == "Principal" else None

    def revoke(self, principal_id: str, *, now: int,
               before_write: Callable[[Principal], object] | None = None) -> Principal:
        node = self._store.get_nodes([principal_id]).get(principal_id)
        if node is None or node.kind != "Principal":
            raise InputError(f"no principal {principal_id!r}")
        props = dict(node.props)
        props["revoked_at"] = now
        if before_write is not None:
            before_write(_principal(node))
        self._store.write(WriteBatch(nodes=[Node("Principal", node.id, props)]))
        if self._cache is not None:
            # After the store write: every process drops its cached keys on its next request.
            self._cache.revoked()
        return _principal(Node("Principal", node.id, props))

    def authenticate(self, key: str | None, *, now: int | None = None) -> Principal:
        """The principal holding `key`; Unauthenticated for a missing, unknown or revoked key.

        With `now`, the key's last use is recorded when the one on file is a day old.
        """
        if not key or not key.startswith(_PREFIX) or len(key) > 200:
            raise Unauthenticated("missing or malformed API key")
        digest = _key_hash(key)
        stamp = self._cache.check() if self._cache is not None else None
        principal = self._cache.get(digest) if self._cache is not None else None
        if principal is None:
            ids = self._store.lookup(KEY_INDEX, digest)
            node = self._store.get_nodes(ids[:1]).get(ids[0]) if ids else None
            principal = _principal(node) if node is not None and node.kind == "Principal" \
                else None
            if principal is None or principal.revoked:
                raise Unauthenticated("unknown or revoked API key")
            if self._cache is not None:
                self._cache.put(digest, principal, under=stamp)
        if now is not None:
            self._note_use(principal.id, now)
        return principal

    def _note_use(self, principal_id: str, now: int) -> None:
        # A node of its own, never the principal's: rewriting the principal here could
        # undo a revocation written by another process in between.
        day = now // _DAY_US
        if self._noted.get(principal_id) == day:
            return
        use_id = _USE_PREFIX + principal_id
        use = self._store.get_nodes([use_id]).get(use_id)
        last = _micros(use.props.get("last_used_at")) if use is not None else None
        if last is None or last // _DAY_US < day:
            self._store.write(WriteBatch(nodes=[Node(_USE_KIND, use_id, {"last_used_at": now})]))
        self._noted[principal_id] = day

    def last_used(self, principal_id: str) -> int | None:
        """When the key was last used (to the day), if it ever was."""
        use_id = _USE_PREFIX + principal_id
        use = self._store.get_nodes([use_id]).get(use_id)
        return _micros(use.props.get("last_used_at")) if use is not None else None
