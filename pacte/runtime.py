"""An opened data directory: the store, the key vault, the audit trail and the policy.

`Pacte.init(dir)` creates one; `Pacte.open(dir)` opens it; `Pacte.attach(store_uri, ...)`
serves a Neo4j store whose keys live in it, from a machine with no data directory.
Everything that reads or writes customer data then goes through
`pacte.session(principal, purpose)` (G10).

The directory holds:

    policy.toml   the purposes (edit to change the policy; its hash is the policy version)
    graph.db      the SQLite store (unless the graph lives in Neo4j: see store.uri)
    store.uri     where the graph lives, when it is not graph.db
    master.key    the key-encryption keys (0600), unless PACTE_MASTER_KEY is set
    keys.db       the wrapped per-customer data keys, apart from the graph (beside a
                  Neo4j store they live in Neo4j instead: see docs/scale-out.md)
    audit.db      the audit trail
    signing.key   the Ed25519 key that signs audit checkpoints and receipts (0600)
    revocations.stamp  replaced by every API-key revocation; read per request, so that
                  every process drops the keys it remembers (see pacte.graph.key_cache)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacte import admin
from pacte.audit import AuditTrail, Checkpoint
from pacte.backend import OPERATOR, Backend
from pacte.clock import Clock, to_micros, utcnow
from pacte.crypto import (
    FileKeyProvider,
    KeyVault,
    SigningKey,
    TokenKey,
    provider_from_env_or_file,
)
from pacte.crypto.vault import VaultRows, new_vault_meta
from pacte.erasure_log import LOG_FILE as ERASURE_LOG_FILE
from pacte.errors import (
    ConfigError,
    InputError,
    NotInitialised,
    PacteError,
    PolicyDenied,
)
from pacte.graph.migrate import MigrationReport
from pacte.graph.policy import DEFAULT_POLICY_TOML, Policy
from pacte.graph.principals import Principal
from pacte.graph.session import Session
from pacte.graph.store import Store, WriteBatch
from pacte.graph.stores import NEO4J_SCHEMES, check_reachable, open_store
from pacte.metrics import Metrics
from pacte.refusals import RefusalTally
from pacte.trails import LocalTrail, NeoTrail, Trail

if TYPE_CHECKING:
    from pacte.audit.shared_trail import SharedTrail
    from pacte.identity.explain import IdentityExplanation
    from pacte.ingest import IngestReport

__all__ = ["OPERATOR", "Pacte", "default_data_dir", "signing_public_key"]

POLICY_FILE = "policy.toml"
GRAPH_FILE = "graph.db"
STORE_URI_FILE = "store.uri"
MASTER_KEY_FILE = "master.key"
KEYS_FILE = "keys.db"
AUDIT_FILE = "audit.db"
SIGNING_KEY_FILE = "signing.key"



def default_data_dir() -> Path:
    return Path(os.environ.get("PACTE_DATA") or "./pacte-data")


def signing_public_key(data_dir: Path | str) -> str:
    """The base64 public key of the directory's signing.key: what verification pins by
    default. KeyVaultError if the file is missing or unreadable."""
    import base64

    key = SigningKey.load(Path(data_dir) / SIGNING_KEY_FILE).public_key
    return base64.b64encode(key).decode("ascii")


class Pacte:
    """An opened pacte data directory. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        store: Store,
        vault: KeyVault,
        audit: Trail,
        signer: SigningKey,
        policy: Policy,
        now: Clock,
        policy_file: Path | None = None,
        signing_key_file: Path | None = None,
        erasure_log: Path | None = None,
    ) -> None:
        # The working directory: the whole data directory, or (attach) scratch space.
        self.data_dir = data_dir
        self.policy_file = policy_file or data_dir / POLICY_FILE
        self.signing_key_file = signing_key_file or data_dir / SIGNING_KEY_FILE
        # Per process: counts and latencies for `/metrics`, never a personal value.
        self.metrics = Metrics()
        # Everything below the door, in one object no public name reaches: the store,
        # the key vault, the trail and what sessions need of them (see `_Backend`).
        self._backend = Backend(data_dir, store=store, vault=vault, audit=audit,
                                signer=signer, policy=policy, now=now, metrics=self.metrics,
                                erasure_log=erasure_log)
        self.metrics.count_round_trips(lambda: getattr(store, "round_trips", None))
        self._refusals = RefusalTally(
            append=self._backend.audit_append,
            record=lambda reason: self._backend.system_record(
                "auth", outcome="denied", reason=reason))

    # -- lifecycle ------------------------------------------------------------

    @classmethod
    def init(cls, data_dir: Path | str, *, store_uri: str | None = None,
             now: Clock = utcnow) -> Pacte:
        """Create a data directory: policy, keys, store, audit trail. Refuses to overwrite."""
        path = Path(data_dir)
        if (path / POLICY_FILE).exists() or (path / KEYS_FILE).exists():
            raise ConfigError(f"{path} is already initialised")
        # Before anything is written: an unreachable store fails in seconds, not after
        # the driver's minute of retries, and leaves no directory behind.
        check_reachable(store_uri or os.environ.get("PACTE_STORE") or str(path / GRAPH_FILE))
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".pacte-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write to {path}: {exc.strerror}") from exc
        ours = [path / n for n in (MASTER_KEY_FILE, KEYS_FILE, SIGNING_KEY_FILE, STORE_URI_FILE,
                                   GRAPH_FILE, AUDIT_FILE, POLICY_FILE)]
        existing = {p for p in ours if p.exists()}
        try:
            cls._create_files(path, store_uri=store_uri, now=now)
            rt = cls.open(path, store_uri=store_uri, now=now)
            try:
                rt._backend.sync_purposes()
                rt._backend.audit_append([rt._backend.system_record("init")])
            except BaseException:
                rt.close()
                raise
        except BaseException:
            # Nothing half-made: a failed init leaves the directory as it found it, so
            # the next attempt is not refused as "already initialised".
            for p in ours:
                if p not in existing:
                    for leftover in (p, p.with_name(p.name + "-wal"),
                                     p.with_name(p.name + "-shm")):
                        leftover.unlink(missing_ok=True)
            raise
        return rt

    @staticmethod
    def _create_files(path: Path, *, store_uri: str | None, now: Clock) -> None:
        if not os.environ.get("PACTE_MASTER_KEY"):
            FileKeyProvider.create(path / MASTER_KEY_FILE)
        provider = provider_from_env_or_file(path / MASTER_KEY_FILE)
        SigningKey.create(path / SIGNING_KEY_FILE)
        if store_uri:
            uri_file = path / STORE_URI_FILE
            uri_file.write_text(store_uri + "\n", encoding="utf-8")
            uri_file.chmod(0o600)  # it may carry the store's password
        # PACTE_STORE, like at every open, wins over store.uri; it is not written down,
        # which is how it keeps a password out of the directory.
        uri = store_uri or os.environ.get("PACTE_STORE") or str(path / GRAPH_FILE)
        if uri == str(path / GRAPH_FILE):
            _private_file(path / GRAPH_FILE)
        _private_file(path / AUDIT_FILE)
        store = open_store(uri, create=True)
        try:
            # Beside a Neo4j store the wrapped keys live in Neo4j, so that a server on
            # any machine reads them; beside SQLite, in keys.db.
            if uri.startswith(NEO4J_SCHEMES):
                KeyVault.over(_neo4j_vault_rows(store, new=new_vault_meta(provider, now=now)[1]),
                              provider).close()
            else:
                KeyVault.create(path / KEYS_FILE, provider).close()
        finally:
            store.close()
        AuditTrail.open(path / AUDIT_FILE, signer=SigningKey.load(path / SIGNING_KEY_FILE),
                        now=now).close()
        # Written last: its presence is what marks the directory as initialised.
        (path / POLICY_FILE).write_text(DEFAULT_POLICY_TOML, encoding="utf-8")

    @classmethod
    def open(cls, data_dir: Path | str, *, store_uri: str | None = None,
             now: Clock = utcnow) -> Pacte:
        path = Path(data_dir)
        if not (path / POLICY_FILE).exists():
            raise NotInitialised(f"{path} is not a pacte data directory; run `pacte init` first")
        policy = Policy.load(path / POLICY_FILE)
        _tighten(path)
        provider = provider_from_env_or_file(path / MASTER_KEY_FILE)
        uri = store_uri or os.environ.get("PACTE_STORE") or _stored_uri(path) or str(
            path / GRAPH_FILE)
        store = open_store(uri)
        try:
            # keys.db wins where there is one (a directory made before the keys could
            # live in Neo4j, or a graph migrated there): its keys are the ones in use.
            if uri.startswith(NEO4J_SCHEMES) and not (path / KEYS_FILE).exists():
                vault = KeyVault.over(_neo4j_vault_rows(store), provider)
            else:
                vault = KeyVault.open(path / KEYS_FILE, provider)
        except BaseException:
            store.close()
            raise
        try:
            signer = SigningKey.load(path / SIGNING_KEY_FILE)
            # A directory whose store is Neo4j and that has no audit.db of its own (its
            # trail moved there) appends to the trail every server shares.
            audit: Trail
            if uri.startswith(NEO4J_SCHEMES) and not (path / AUDIT_FILE).exists():
                audit = NeoTrail(_shared_trail(store, signer=signer, now=now))
            else:
                audit = LocalTrail(AuditTrail.open(path / AUDIT_FILE, signer=signer, now=now))
        except BaseException:
            vault.close()
            store.close()
            raise
        return cls._started(path, store=store, vault=vault, audit=audit, signer=signer,
                            policy=policy, now=now)

    @classmethod
    def attach(cls, store_uri: str, *, policy_file: Path | str, signing_key_file: Path | str,
               work_dir: Path | str, master_key_file: Path | str | None = None,
               erasure_log: Path | str | None = None, now: Clock = utcnow) -> Pacte:
        """Serve a Neo4j store made by `init`, from a machine with no data directory.

        What a server needs comes from outside: the store URI (and credentials), the
        KEK (PACTE_MASTER_KEY, else `master_key_file`), the audit signing key and the
        policy, identical on every server. The wrapped keys are read from Neo4j.
        The audit trail is the one every server shares in Neo4j (this process appends
        to a chain of its own: pacte.audit.shared_trail). `work_dir` (created if
        absent) holds scratch files of ingestion. `erasure_log` (else PACTE_ERASURE_LOG,
        else `work_dir`/erasures.log): the erasure log, best on storage every server
        mounts and kept out of the database's backups (pacte.erasure_log).
        """
        work = Path(work_dir)
        policy_path, signing_path = Path(policy_file), Path(signing_key_file)
        policy = Policy.load(policy_path)
        if not os.environ.get("PACTE_MASTER_KEY") and master_key_file is None:
            raise ConfigError("give the key-encryption key: set PACTE_MASTER_KEY, or name "
                              "the key file")
        provider = provider_from_env_or_file(Path(master_key_file or work / MASTER_KEY_FILE))
        signer = SigningKey.load(signing_path)
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to {work}: {exc.strerror}") from exc
        if not store_uri.startswith(NEO4J_SCHEMES):
            raise ConfigError("only a Neo4j store can be served without a data directory "
                              "(its keys live in it)")
        store = open_store(store_uri)
        try:
            vault = KeyVault.over(_neo4j_vault_rows(store), provider)
        except BaseException:
            store.close()
            raise
        try:
            audit = NeoTrail(_shared_trail(store, signer=signer, now=now))
        except BaseException:
            vault.close()
            store.close()
            raise
        return cls._started(work, store=store, vault=vault, audit=audit, signer=signer,
                            policy=policy, now=now, policy_file=policy_path,
                            signing_key_file=signing_path, erasure_log=Path(
                                erasure_log or os.environ.get("PACTE_ERASURE_LOG")
                                or work / ERASURE_LOG_FILE))

    @classmethod
    def _started(cls, work: Path, *, store: Store, vault: KeyVault, audit: Trail,
                 signer: SigningKey, policy: Policy, now: Clock,
                 policy_file: Path | None = None, signing_key_file: Path | None = None,
                 erasure_log: Path | None = None) -> Pacte:
        rt = cls(work, store=store, vault=vault, audit=audit, signer=signer, policy=policy,
                 now=now, policy_file=policy_file, signing_key_file=signing_key_file,
                 erasure_log=erasure_log)
        try:
            rt._backend.finish_erasures()
            rt._backend.reapply_erasures()
        except BaseException:
            rt.close()
            raise
        return rt

    def close(self) -> None:
        b = self._backend
        for close in (self.flush_refusals, b.trail.close, b.store.close, b.vault.close):
            # Closing must release everything it can, even when one part fails.
            with contextlib.suppress(PacteError):
                close()

    def __enter__(self) -> Pacte:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the door -------------------------------------------------------------

    def session(self, principal: Principal, purpose: str | None, *,
                request_id: str | None = None, defer_audit: bool = False) -> Session:
        """A purpose-bound session: the only way to read or write customer data."""
        return Session(self._backend, principal, purpose, request_id=request_id,
                       defer_audit=defer_audit)

    def operator_session(self, purpose: str = "service") -> Session:
        """A session for the command line's built-in operator."""
        every = tuple(self._backend.policy.purposes)
        return self.session(replace(OPERATOR, purposes=every), purpose)

    def authenticate(self, api_key: str | None, *, request_id: str | None = None) -> Principal:
        """The principal holding this API key; failures are audited, then raised."""
        try:
            return self._backend.principals.authenticate(api_key, now=to_micros(self.now()))
        except PolicyDenied as exc:
            # Counted per time window rather than one entry each (see pacte.refusals):
            # anyone can send requests without a key, and the trail is not theirs to fill.
            self._refusals.refused(exc.code, at=self.now(), request_id=request_id)
            raise

    def flush_refusals(self) -> None:
        """Append the counts of refused requests not yet on record (done by `close`)."""
        self._refusals.flush()

    # -- the operator's audited operations (pacte.admin) ----------------------------

    @property
    def policy_version(self) -> str:
        """The hash of policy.toml, which every audit entry names."""
        return self._backend.policy.version

    def create_principal(self, *, name: str, role: str, purposes: Sequence[str]
                         ) -> tuple[Principal, str]:
        """A new principal and its API key (shown once; only its hash is kept), audited."""
        return admin.create_principal(self._backend, name=name, role=role, purposes=purposes)

    def list_principals(self) -> list[dict[str, Any]]:
        """Every principal (never a key): id, name, role, purposes, state, created and
        last-used dates (ISO 8601; the last use to the day)."""
        return admin.list_principals(self._backend)

    def revoke_principal(self, principal_id: str) -> Principal:
        return admin.revoke_principal(self._backend, principal_id)

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint of the audit trail now (`pacte audit checkpoint`)."""
        return admin.checkpoint(self._backend)

    def seed(self, customers: int, *, seed: int = 0, batch_customers: int = 1000,
             progress: Callable[[int], object] | None = None,
             truth: dict[str, set[tuple[str, str]]] | None = None) -> dict[str, int]:
        """Load reproducible synthetic data through the operator's session, batch by batch.

        With `truth` (an empty dict), the world gets the planted patterns of
        pacte.seed.patterns and `truth` receives, per customer id, the actions that
        will be right for them: keep it apart from the data directory.
        """
        from pacte.seed import SeedStats, generate
        from pacte.seed.patterns import Planted

        if not isinstance(customers, int) or customers < 1:
            raise InputError("the number of customers must be a whole number >= 1")
        stats = SeedStats()

        def done(batch: WriteBatch) -> None:
            stats.add(batch)
            if progress is not None:
                progress(stats.customers)

        if truth is None:
            batches = generate(customers, seed=seed, batch_customers=batch_customers,
                               now=self.now())
        else:
            planted = Planted(customers, seed=seed, batch_customers=batch_customers,
                              now=self.now())
            planted.truth = truth
            batches = planted.batches()
        self.operator_session("service").ingest(batches, on_batch=done)
        return {"customers": stats.customers, "interactions": stats.interactions}

    def ingest(self, files: Sequence[str | Path], *, source: str | None = None,
               mapping: str | Path | None = None, format: str | None = None,
               max_errors: int | None = None,
               progress: Callable[[str, int], object] | None = None,
               batch_rows: int | None = None) -> IngestReport:
        """Load source files (CSV, JSON lines; '-' is standard input) through the
        operator's session, resolving identities; see docs/ingest.md.

        Returns the counts per file; rejected rows are in `report.rejects`. Raises
        SourceError (one line) when a file cannot be read as a whole. `batch_rows`: rows
        per written batch and checkpoint (default 20,000, or 5,000 on Neo4j where a
        batch is one server transaction; memory grows with it).
        """
        from pacte.identity.rules import load_rules
        from pacte.ingest import ingest_files, load_mapping
        from pacte.ingest.mapping import Mapping
        from pacte.ingest.runner import BATCH_ROWS, BATCH_ROWS_NEO4J

        if not files:
            raise InputError("name at least one file to ingest ('-' for standard input)")
        if format is not None and format not in ("csv", "jsonl"):
            raise InputError("format must be csv or jsonl")
        if max_errors is not None and max_errors < 0:
            raise InputError("max_errors must be >= 0")
        if batch_rows is not None and not 1 <= batch_rows <= 100_000:
            raise InputError("batch_rows must be 1 to 100000")
        m = load_mapping(mapping) if mapping is not None else Mapping()
        if source is not None:
            m = replace(m, source=source)
        policy_file = self.policy_file
        rules = load_rules(policy_file.read_text(encoding="utf-8"), where=str(policy_file))
        session = self.operator_session("service")
        b = self._backend
        default = BATCH_ROWS_NEO4J if b.store.uri.startswith(NEO4J_SCHEMES) else BATCH_ROWS
        return ingest_files(session, [str(f) for f in files], mapping=m, format=format,
                            max_errors=max_errors, policy=b.policy, work_dir=self.data_dir,
                            now=self.now(), erased=b.vault.destroyed_among, rules=rules,
                            progress=progress, batch_rows=batch_rows or default)

    def explain_identity(self, customer_id: str) -> IdentityExplanation:
        """Which identifiers (kinds and blind refs) and matching rules built a customer."""
        from pacte.identity.explain import explain
        from pacte.identity.rules import load_rules

        policy_file = self.policy_file
        rules = load_rules(policy_file.read_text(encoding="utf-8"), where=str(policy_file))
        return explain(self.operator_session("service"), customer_id, rules)

    def unmerge(self, customer_id: str) -> str:
        """Undo the merge of `customer_id` (a merged part) into its survivor, consent
        states included; what arrived for it since goes back to it. Returns the
        survivor's id. See pacte.identity.merge."""
        from pacte.identity.merge import unmerge

        return unmerge(self.operator_session("service"), customer_id,
                       policy=self._backend.policy, now_us=to_micros(self.now()))

    def migrate(self, to: str, *, switch: bool = False, batch: int = 1000,
                progress: Callable[[str, int], object] | None = None) -> MigrationReport:
        """Copy the graph (ciphertext as is) to the store at `to`; to Neo4j, the wrapped
        keys and the audit trail too (pacte.admin.migrate_store).

        With `switch`, the data directory uses the new store from then on (after a
        switch to Neo4j, close this handle and open the directory again).
        """
        return admin.migrate_store(self._backend, self.data_dir, to, switch=switch,
                                   batch=batch, progress=progress)

    def rotate_signing_key(self) -> str:
        """A new audit signing key, handed over on the trail; returns its fingerprint."""
        return admin.rotate_signing_key(self._backend, self.signing_key_file)

    def rotate_keys(self) -> int:
        """A new KEK version; every data key re-wrapped under it. Returns the new version."""
        return admin.rotate_keys(self._backend)

    def now(self) -> datetime:
        return self._backend.now()

    # -- public facts of the policy and the keys (nothing personal, nothing secret) --

    @property
    def purpose_ids(self) -> tuple[str, ...]:
        """The policy's purposes (public: `pacte purposes` lists them)."""
        return tuple(self._backend.policy.purposes)

    @property
    def controller(self) -> Any:
        """The controller named in the policy, for the Art. 15 and 30 documents."""
        return self._backend.policy.controller

    @property
    def signing_public_key(self) -> bytes:
        """The public half of the audit signing key: what receipts and reports are
        checked against."""
        return self._backend.signer.public_key

    def token_key(self, purpose: str) -> TokenKey:
        """The key one front door seals its own tokens with (the console's links,
        cookies and CSRF tokens; never customer data): derived from the vault secret,
        so the same on every server of this vault."""
        return self._backend.vault.token_key(purpose)

    def principal(self, principal_id: str) -> Principal | None:
        """A principal by id (never its key), or None; for checking that a console
        cookie's or a link's principal still exists and is not revoked."""
        return self._backend.principals.get(principal_id)


def _private_file(path: Path) -> None:
    """Create an empty file readable by its owner alone, before SQLite opens it.

    SQLite creates a database with the process umask (often 0644), and its -wal and
    -shm files with the database's mode: creating the file first makes all three 0600.
    An empty file is a new database to SQLite.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tighten(path: Path) -> None:
    """Make the databases of a directory made by an older pacte 0600, like new ones."""
    for name in (GRAPH_FILE, AUDIT_FILE, KEYS_FILE):
        for f in (path / name, path / f"{name}-wal", path / f"{name}-shm"):
            # Not ours to change (another owner), or gone meanwhile: left as it is.
            with contextlib.suppress(OSError):
                if f.stat().st_mode & 0o077:
                    f.chmod(0o600)


def _stored_uri(path: Path) -> str | None:
    f = path / STORE_URI_FILE
    return f.read_text(encoding="utf-8").strip() if f.exists() else None


def _neo4j_vault_rows(store: Store, *, new: Mapping[str, object] | None = None) -> VaultRows:
    """The key vault's rows in the Neo4j store's database (`new`: made with this meta)."""
    # Imported here: the Neo4j driver costs half a second to import, which a command on
    # a SQLite directory should not pay.
    from pacte.crypto.neo4j_vault import Neo4jVaultRows
    from pacte.graph.neo4j_store import Neo4jStore

    assert isinstance(store, Neo4jStore)
    return Neo4jVaultRows(store) if new is None else Neo4jVaultRows.create(store, dict(new))


def _shared_trail(store: Store, *, signer: SigningKey, now: Clock) -> SharedTrail:
    """This process's writer of the audit trail every server shares in Neo4j."""
    from pacte.audit.shared_trail import SharedTrail
    from pacte.graph.neo4j_store import Neo4jStore

    assert isinstance(store, Neo4jStore)
    return SharedTrail.open(store, signer=signer, now=now)
