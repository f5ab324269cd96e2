"""G10 in the types: the public surface of pacte offers the door and the audited
operator's operations, never the store, the key vault, the trail or their methods.

Before issue #16, `rt.shred(customer_id)` (through `rt.shredding`) destroyed a
customer's keys with no role, no purpose and no audit entry, and `rt.audit_append`
wrote any record: both were public methods of `Pacte`.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pacte
from pacte.runtime import Pacte
from tests.helpers import build_world

# What a caller of `Pacte` may use: lifecycle, the door, and pacte.admin's operations.
PUBLIC = {
    "init", "open", "close", "data_dir", "now", "session", "operator_session",
    "authenticate", "flush_refusals", "policy_version", "create_principal",
    "list_principals", "revoke_principal", "checkpoint", "seed", "ingest",
    "explain_identity", "migrate", "rotate_signing_key", "rotate_keys",
    # issue #18: a server without a data directory, its files, its /metrics counters
    "attach", "policy_file", "signing_key_file", "metrics",
    # issue #17: undoing a merge (an operator's operation, audited)
    "unmerge",
    # public facts the console and the API show: nothing personal, nothing secret
    "purpose_ids", "controller", "signing_public_key", "principal",
    # the key the console seals its own tokens with (opaque, never customer data): the
    # same on every server of a vault (docs/scale-out.md)
    "token_key",
}
BACKEND = {"store", "vault", "audit", "signer", "cipher", "codec", "principals", "policy",
           "shredding", "shred", "audit_append", "audit_entries", "audit_exclusive",
           "audit_verify", "audit_trace", "sign_receipt", "ensure_keys", "subject_ref",
           "begin_request"}


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_an_opened_directory_offers_no_backend(tmp_path: Path) -> None:
    world = build_world(tmp_path / "w")
    try:
        assert _public(world.rt) == PUBLIC
        assert not _public(world.rt) & BACKEND
    finally:
        world.rt.close()


def test_the_class_offers_no_backend() -> None:
    assert _public(Pacte) <= PUBLIC
    assert not {n for n, _ in inspect.getmembers(Pacte)} & BACKEND


def test_the_package_exports_no_storage_type() -> None:
    assert not set(pacte.__all__) & {"Store", "WriteBatch", "IndexEntry", "Node", "Edge",
                                     "KeyVault", "AuditTrail", "Codec", "FieldCipher"}
    for name in pacte.__all__:
        assert name in PUBLIC_TYPES or name.endswith(("Error", "View")) or name[0] == "_" \
            or issubclass(getattr(pacte, name), pacte.PacteError), name


PUBLIC_TYPES = {"Pacte", "Session", "Policy", "Purpose", "Principal", "Page", "Withheld",
                "ConsentChange", "Explanation", "ProjectedCustomer"}


def test_the_graphql_context_holds_only_the_session_its_loaders_and_links() -> None:
    from dataclasses import fields

    from pacte.api.context import Context

    # `links` seals a transparency link once the session has allowed it (issue #20).
    assert [f.name for f in fields(Context)] == ["session", "loaders", "links"]
