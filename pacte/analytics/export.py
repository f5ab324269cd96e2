"""Exports of a projection for other tools: GraphML, GEXF or node-link JSON.

An export releases one node per customer with their edges, so it is built from the
k-anonymous release (`pacte.analytics.anonymity`), never from the projection itself
(G9): every customer record in it (segment, age band, edge set with its generalised
dates and amounts) is identical to at least `k - 1` others. Besides:

- customers get new pseudonyms, keyed for this export alone (an HMAC of the
  projection's pseudonym under a fresh random key that is then dropped), so two
  exports, even of one projection, share no customer node id;
- every non-customer node carries `customers`, its number of distinct customers;
- the achieved k and the suppression rates are in the file's metadata (graph
  attributes in GraphML and JSON, the `<description>` of GEXF's `<meta>`).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Literal

import networkx as nx

from pacte.analytics.anonymity import Anonymity
from pacte.analytics.projection import CUSTOMER, Projection, _detail, anonymise, pseudonym
from pacte.analytics.suppress import K_DEFAULT
from pacte.clock import Clock, utcnow
from pacte.errors import InputError

__all__ = ["FORMATS", "ExportFormat", "Exported", "export", "export_graph", "output_path"]

ExportFormat = Literal["graphml", "gexf", "json"]
FORMATS: tuple[ExportFormat, ...] = ("graphml", "gexf", "json")


@dataclass(frozen=True, slots=True)
class Exported:
    """A written export and the anonymity its records achieved."""

    path: Path
    anonymity: Anonymity


def export_graph(projection: Projection, *, k: int = K_DEFAULT) -> nx.MultiDiGraph:
    """The graph an export writes: k-anonymous records under fresh pseudonyms.

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(5)] + [row(9, bought=["desk"])])
    >>> g = export_graph(p)
    >>> sorted(n for n, kind in g.nodes(data="kind") if kind != "customer")  # no desk, no lamp
    ['segment:gold']
    >>> g.graph["k_achieved"], g.nodes["segment:gold"]["customers"]
    (6, 6)
    """
    key = secrets.token_bytes(32)
    names = {c: pseudonym(key, c) for c, kind in _detail(projection).nodes(data="kind")
             if kind == CUSTOMER}
    del key  # nothing can map an export's pseudonym back to the projection's
    release = anonymise(projection, k=k, rename=names.__getitem__)
    graph = release.graph
    linked = Counter(b for a, b in graph.edges()
                     if graph.nodes[a].get("kind") == CUSTOMER)
    for node, kind in graph.nodes(data="kind"):
        if kind != CUSTOMER:
            graph.nodes[node]["customers"] = linked[node]
    return graph


def check_directory(directory: Path | None) -> Path:
    """`directory`, checked to be one."""
    if directory is None:
        raise InputError("give a directory or an output file")
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    return directory


def new_file(path: Path) -> Path:
    """`path`, checked to be a file that can be created and does not exist yet."""
    if path.exists():
        raise InputError(f"{path} already exists; choose a new file name")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent} is not a directory")
    return path


def output_path(directory: Path, *, stem: str, suffix: str, now: Clock = utcnow) -> Path:
    """A new file name in `directory`: `<stem>-<UTC time>[-n].<suffix>`, never an old one."""
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stem}-{stamp}.{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{stamp}-{n}.{suffix}"
    return path


def export(projection: Projection, *, format: ExportFormat, directory: Path | None = None,
           output: Path | None = None, k: int = K_DEFAULT, now: Clock = utcnow) -> Exported:
    """Write the k-anonymous release to a new file in `directory`, or to `output`
    (a new file: an existing one is never overwritten).

    >>> import tempfile
    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(5)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     done = export(p, format="json", directory=Path(tmp))
    >>> done.path.suffix, done.anonymity.achieved
    ('.json', 5)
    """
    if format not in FORMATS:
        raise InputError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
    path = new_file(output) if output is not None else output_path(
        check_directory(directory), stem="pacte-projection", suffix=format, now=now)
    graph = export_graph(projection, k=k)
    meta = {name: value for name, value in graph.graph.items()
            if isinstance(value, str | int | float)}
    if format == "graphml":
        nx.write_graphml(graph, path, encoding="utf-8", prettyprint=True)
    elif format == "gexf":
        nx.write_gexf(graph, path, encoding="utf-8", prettyprint=True)
        # GEXF keeps no graph attributes: the metadata goes in <meta><description>.
        text = "; ".join(f"{name}={value}" for name, value in sorted(meta.items()))
        xml = path.read_text(encoding="utf-8")
        path.write_text(xml.replace("</creator>", "</creator>\n    <description>"
                                    f"{escape(text)}</description>", 1), encoding="utf-8")
    else:
        doc = nx.node_link_data(graph, edges="edges")
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return Exported(path, anonymity_of(meta))


def anonymity_of(meta: dict[str, str | int | float]) -> Anonymity:
    """The `Anonymity` recorded in an export graph's metadata."""
    return Anonymity(k=int(meta["k"]), achieved=int(meta["k_achieved"]),
                     customers=int(meta["customers"]),
                     suppressed=int(meta["customers_suppressed"]),
                     classes=int(meta["equivalence_classes"]),
                     items_suppressed=float(meta["items_suppressed_rate"]))
