"""Exports of a projection for other tools: GraphML, GEXF or node-link JSON.

What leaves is minimised further than the projection in memory (G9):

- customers get new pseudonyms, keyed for this export alone (an HMAC of the
  projection's pseudonym under a fresh random key that is then dropped), so two
  exports, even of one projection, share no customer node id;
- a product, channel, segment or device type linked to fewer than `k` distinct
  customers is left out, with its edges;
- a customer's `age_band` is kept only when at least `k` customers share their
  segment and age band, and `segment` only when at least `k` share it;
- times are cut to the day;
- every non-customer node carries `customers`, its number of distinct customers.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from pacte.analytics.projection import CUSTOMER, Projection, pseudonym
from pacte.analytics.suppress import K_DEFAULT, check_k
from pacte.clock import Clock, utcnow
from pacte.errors import InputError

__all__ = ["FORMATS", "ExportFormat", "export", "export_graph", "output_path"]

ExportFormat = Literal["graphml", "gexf", "json"]
FORMATS: tuple[ExportFormat, ...] = ("graphml", "gexf", "json")


def export_graph(projection: Projection, *, k: int = K_DEFAULT) -> nx.MultiDiGraph:
    """The graph an export writes: re-pseudonymised, small groups removed, days not times.

    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(5)] + [row(9, bought=["desk"])])
    >>> g = export_graph(p)
    >>> sorted(n for n, kind in g.nodes(data="kind") if kind != "customer")  # no desk
    ['product:lamp', 'segment:gold']
    >>> g.nodes["product:lamp"]["customers"], {d["at"] for *_, d in g.edges(data=True)
    ...                                         if d["rel"] == "bought"} >= {"2026-01-01"}
    (5, True)
    """
    check_k(k)
    src = projection.graph
    people = {n for n, kind in src.nodes(data="kind") if kind == CUSTOMER}
    linked: dict[str, set[str]] = defaultdict(set)
    for a, b in src.edges():
        if a in people and b not in people:
            linked[b].add(a)
    keep = {n for n, who in linked.items() if len(who) >= k}
    classes = Counter((src.nodes[c].get("segment"), src.nodes[c].get("age_band"))
                      for c in people)
    segments = Counter(src.nodes[c].get("segment") for c in people)
    key = secrets.token_bytes(32)
    rename = {c: pseudonym(key, c) for c in people}
    del key
    out = nx.MultiDiGraph(purpose=projection.purpose, k=k,
                          built_on=projection.built_at.date().isoformat())
    for c in sorted(people, key=rename.__getitem__):
        seg, band = src.nodes[c].get("segment"), src.nodes[c].get("age_band")
        attrs: dict[str, Any] = {"kind": CUSTOMER}
        if seg and segments[seg] >= k:
            attrs["segment"] = seg
        if band and classes[(seg, band)] >= k:
            attrs["age_band"] = band
        out.add_node(rename[c], **attrs)
    for n in sorted(keep):
        d = src.nodes[n]
        out.add_node(n, kind=d.get("kind"), label=str(d.get("label", n)),
                     customers=len(linked[n]))
    for a, b, d in src.edges(data=True):
        if a not in people or (b not in people and b not in keep):
            continue
        out.add_edge(rename[a], rename.get(b, b), **_edge_attrs(d, keep))
    return out


def _edge_attrs(data: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for name, value in data.items():
        if value is None or (name == "product" and value not in keep):
            continue
        if isinstance(value, datetime):
            value = value.date().isoformat()
        elif isinstance(value, float):
            value = round(value, 2)
        elif not isinstance(value, str | int):
            continue  # nothing else belongs in an export (and bytes never do)
        attrs[name] = value
    return attrs


def output_path(directory: Path, *, stem: str, suffix: str, now: Clock = utcnow) -> Path:
    """A new file name in `directory`: `<stem>-<UTC time>[-n].<suffix>`, never an old one."""
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stem}-{stamp}.{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{stamp}-{n}.{suffix}"
    return path


def export(projection: Projection, *, format: ExportFormat, directory: Path,
           k: int = K_DEFAULT, now: Clock = utcnow) -> Path:
    """Write the minimised projection to a new file in `directory`; returns its path.

    >>> import tempfile
    >>> from pacte.analytics.testing import projection_of, row
    >>> p = projection_of([row(i, bought=["lamp"]) for i in range(5)])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     export(p, format="json", directory=Path(tmp)).suffix
    '.json'
    """
    if format not in FORMATS:
        raise InputError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    graph = export_graph(projection, k=k)
    path = output_path(directory, stem="pacte-projection", suffix=format, now=now)
    if format == "graphml":
        nx.write_graphml(graph, path, encoding="utf-8", prettyprint=True)
    elif format == "gexf":
        nx.write_gexf(graph, path, encoding="utf-8", prettyprint=True)
    else:
        doc = nx.node_link_data(graph, edges="edges")
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
