"""Choosing a store from a URI: a file path or `sqlite:///path`, or a Neo4j URI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pacte.errors import ConfigError, StorageError
from pacte.graph.store import NEO4J_SCHEMES, Store

if TYPE_CHECKING:
    from pacte.graph.neo4j_store import Neo4jStore

__all__ = ["NEO4J_SCHEMES", "check_reachable", "open_store"]


def check_reachable(uri: str, *, timeout: float = 5.0) -> None:
    """Fail within about `timeout` seconds, with one line, when `uri` cannot be used.

    For `pacte init`, before anything is written: the driver would otherwise retry an
    unreachable server for a minute."""
    if not uri.startswith(NEO4J_SCHEMES):
        if "://" in uri and not uri.startswith("sqlite:///"):
            open_store(uri)  # raises the unsupported-scheme error
        return
    probe = _neo4j().from_uri(uri, connection_timeout=timeout, max_retry_time=0.0)
    try:
        probe.ping()
    except StorageError as exc:
        host = uri.split("@")[-1]  # never the password
        raise ConfigError(f"cannot reach the Neo4j store at {host}: {exc}") from exc
    finally:
        probe.close()


def open_store(uri: str, *, create: bool = False, read_cache: int | None = None) -> Store:
    """The store at `uri`: SQLite for a path, Neo4j for neo4j:// and bolt:// URIs.

    `read_cache`: the rows a SQLite store keeps of its reads (0: none; None: as
    PACTE_READ_CACHE says, else `pacte.graph.read_cache.DEFAULT_ENTRIES`)."""
    if uri.startswith(NEO4J_SCHEMES):
        store: Store = _neo4j().from_uri(uri)
        return store
    if "://" in uri and not uri.startswith("sqlite:///"):
        raise ConfigError(f"unsupported store URI {uri.split('://')[0]}://; use a file path, "
                          "sqlite:///path or neo4j://host:7687")
    from pacte.graph.consent import LISTED_SOURCES
    from pacte.graph.read_cache import entries_from_env
    from pacte.graph.sqlite_store import SQLiteStore

    return SQLiteStore(uri.removeprefix("sqlite:///"), create=create,
                       listed_sources=LISTED_SOURCES,
                       read_cache=entries_from_env() if read_cache is None else read_cache)


def _neo4j() -> type[Neo4jStore]:
    # The driver is the `neo4j` extra: a SQLite-only install does without it.
    try:
        from pacte.graph.neo4j_store import Neo4jStore
    except ImportError as exc:
        raise ConfigError("a Neo4j store needs the Neo4j driver: pip install 'pacte[neo4j]'"
                          ) from exc
    return Neo4jStore
