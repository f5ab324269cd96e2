"""Choosing a store from a URI: a file path or `sqlite:///path`, or a Neo4j URI."""

from __future__ import annotations

from pacte.errors import ConfigError
from pacte.graph.store import Store

__all__ = ["NEO4J_SCHEMES", "open_store"]

NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def open_store(uri: str, *, create: bool = False) -> Store:
    """The store at `uri`: SQLite for a path, Neo4j for neo4j:// and bolt:// URIs."""
    if uri.startswith(NEO4J_SCHEMES):
        from pacte.graph.neo4j_store import Neo4jStore

        store: Store = Neo4jStore.from_uri(uri)
        return store
    if "://" in uri and not uri.startswith("sqlite:///"):
        raise ConfigError(f"unsupported store URI {uri.split('://')[0]}://; use a file path, "
                          "sqlite:///path or neo4j://host:7687")
    from pacte.graph.sqlite_store import SQLiteStore

    return SQLiteStore(uri.removeprefix("sqlite:///"), create=create)
