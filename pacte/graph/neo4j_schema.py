"""The Neo4j store's constraints and indexes, and the schema version it records.

The layout they serve is described in pacte.graph.neo4j_store. Every statement is
idempotent (IF NOT EXISTS), so every store runs them once when it first needs the server,
and any number of processes may do so at the same time.
"""

from __future__ import annotations

from typing import LiteralString

import neo4j
from neo4j.exceptions import ClientError

__all__ = ["SCHEMA_VERSION", "STATEMENTS", "create_schema"]

SCHEMA_VERSION = "1"

STATEMENTS: tuple[LiteralString, ...] = (
    "CREATE CONSTRAINT pacte_node_id IF NOT EXISTS "
    "FOR (n:PacteNode) REQUIRE n.id IS UNIQUE",
    "CREATE INDEX pacte_node_kind IF NOT EXISTS FOR (n:PacteNode) ON (n.kind, n.id)",
    "CREATE INDEX pacte_node_owner IF NOT EXISTS FOR (n:PacteNode) ON (n.owner)",
    "CREATE CONSTRAINT pacte_edge_id IF NOT EXISTS "
    "FOR ()-[r:PACTE_EDGE]-() REQUIRE r.id IS UNIQUE",
    "CREATE CONSTRAINT pacte_index_key IF NOT EXISTS "
    "FOR (i:PacteIndex) REQUIRE i.key IS UNIQUE",
    "CREATE INDEX pacte_index_token IF NOT EXISTS FOR (i:PacteIndex) ON (i.name, i.token)",
    # Set on event-id entries only (Neo4j has no partial constraints; a node without the
    # property is not constrained): one interaction per event id, even when two
    # processes record it at the same moment.
    "CREATE CONSTRAINT pacte_index_unique IF NOT EXISTS "
    "FOR (i:PacteIndex) REQUIRE i.unique_key IS UNIQUE",
    "CREATE INDEX pacte_index_node IF NOT EXISTS FOR (i:PacteIndex) ON (i.node_id)",
    "CREATE CONSTRAINT pacte_meta_key IF NOT EXISTS "
    "FOR (m:PacteMeta) REQUIRE m.key IS UNIQUE",
    # The key vault kept beside the graph (pacte.crypto.neo4j_vault).
    "CREATE CONSTRAINT pacte_vault_key IF NOT EXISTS "
    "FOR (v:PacteVault) REQUIRE v.key IS UNIQUE",
    "CREATE CONSTRAINT pacte_dek_key IF NOT EXISTS FOR (k:PacteDek) REQUIRE k.key IS UNIQUE",
    "CREATE INDEX pacte_dek_customer IF NOT EXISTS FOR (k:PacteDek) ON (k.customer_id)",
    "CREATE CONSTRAINT pacte_tombstone_ref IF NOT EXISTS "
    "FOR (t:PacteTombstone) REQUIRE t.subject_ref IS UNIQUE",
    "CREATE CONSTRAINT pacte_erasing_customer IF NOT EXISTS "
    "FOR (e:PacteErasing) REQUIRE e.customer_id IS UNIQUE",
    # The audit trail kept beside the graph (pacte.audit.shared_trail).
    "CREATE CONSTRAINT pacte_audit_chain IF NOT EXISTS "
    "FOR (c:PacteAuditChain) REQUIRE c.chain IS UNIQUE",
    # A seq (ord * span + n) names one entry: two chains never share an ordinal.
    "CREATE CONSTRAINT pacte_audit_chain_ord IF NOT EXISTS "
    "FOR (c:PacteAuditChain) REQUIRE c.ord IS UNIQUE",
    "CREATE CONSTRAINT pacte_audit_entry IF NOT EXISTS "
    "FOR (e:PacteAuditEntry) REQUIRE e.key IS UNIQUE",
    "CREATE INDEX pacte_audit_entry_time IF NOT EXISTS "
    "FOR (e:PacteAuditEntry) ON (e.time)",
    "CREATE INDEX pacte_audit_entry_chain IF NOT EXISTS "
    "FOR (e:PacteAuditEntry) ON (e.chain, e.n)",
    "CREATE INDEX pacte_audit_subject IF NOT EXISTS "
    "FOR (s:PacteAuditSubject) ON (s.subject, s.time)",
    # verify_shared reads each entry's subject rows.
    "CREATE INDEX pacte_audit_subject_entry IF NOT EXISTS "
    "FOR (s:PacteAuditSubject) ON (s.chain, s.n)",
    "CREATE CONSTRAINT pacte_audit_checkpoint IF NOT EXISTS "
    "FOR (c:PacteAuditCheckpoint) REQUIRE c.key IS UNIQUE",
)
_AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"
_INIT_VERSION = (
    "MERGE (m:PacteMeta {key: 'schema_version'}) ON CREATE SET m.value = $version "
    "RETURN m.value AS version"
)



def create_schema(session: neo4j.Session) -> str:
    """Create what is missing, wait until every index is online; the schema version the
    database holds (SCHEMA_VERSION, unless another pacte made it)."""
    for statement in STATEMENTS:
        try:
            session.execute_write(_run_statement, statement)
        except ClientError as exc:
            # Another process created the same rule between IF NOT EXISTS and us.
            if "AlreadyExists" not in (exc.code or ""):
                raise
    session.run(_AWAIT_INDEXES, seconds=300).consume()
    version: str = session.execute_write(
        lambda tx: tx.run(_INIT_VERSION, version=SCHEMA_VERSION).single(strict=True)[0])
    return version


def _run_statement(tx: neo4j.ManagedTransaction, statement: LiteralString) -> None:
    tx.run(statement).consume()
