"""Exports on hand-made projections: formats round-trip, small groups and rare traits go."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import networkx as nx
import pytest

from pacte.analytics import FORMATS, export, export_graph
from pacte.analytics.testing import START, projection_of, row
from pacte.errors import InputError


def shop() -> list:
    return ([row(i, bought=["lamp"], age_band="30-39", devices=["bulb"]) for i in range(5)]
            + [row(i, bought=["desk"], age_band="50-59", devices=["plug"])
               for i in range(100, 104)]
            + [row(200, segment="solo", bought=["lamp"], referred=[0])])


def read(path: Path) -> nx.Graph:
    if path.suffix == ".graphml":
        return nx.read_graphml(path)
    if path.suffix == ".gexf":
        return nx.read_gexf(path)
    return nx.node_link_graph(json.loads(path.read_text()), edges="edges")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_record_leaves_in_a_class_of_five(tmp_path: Path, fmt: str) -> None:
    done = export(projection_of(shop()), format=fmt, directory=tmp_path)  # type: ignore[arg-type]
    g = read(done.path)
    records = Counter(record(g, n) for n, d in g.nodes(data=True) if d.get("kind") == "customer")
    assert sum(records.values()) == 10 and min(records.values()) >= 5
    assert done.anonymity.achieved == min(records.values())
    assert all(a in g and b in g for a, b in g.edges())
    # lamp: the five 30-39 buyers share it; the desk buyers are 4 and pooled with solo.
    assert int(g.nodes["product:lamp"]["customers"]) == 5
    assert "product:desk" not in g


def record(g: nx.Graph, node: str) -> tuple[object, ...]:
    """Everything an export says about one customer, their pseudonym aside."""
    d = g.nodes[node]
    edges = sorted(repr(sorted({"dst": b, **e}.items() - {("id", e.get("id"))}))
                   for _, b, e in g.edges(node, data=True))  # GEXF numbers its edges
    return (d.get("segment"), d.get("age_band"), tuple(edges))


def test_rare_traits_are_generalised() -> None:
    g = export_graph(projection_of(shop()))
    traits = Counter((d.get("segment"), d.get("age_band"))
                     for _, d in g.nodes(data=True) if d["kind"] == "customer")
    # 30-39 gold: 5 customers, kept; 50-59 gold (4) and the solo 30-39 share a class.
    assert traits == {("gold", "30-39"): 5, ("*", "30-59"): 5}


def test_referrals_between_customers_never_leave() -> None:
    g = export_graph(projection_of(shop()))
    assert not any(rel == "referred" for *_, rel in g.edges(data="rel"))


def test_every_export_has_its_own_pseudonyms(tmp_path: Path) -> None:
    p = projection_of(shop())
    a, b = export_graph(p), export_graph(p)
    ca = {n for n, k in a.nodes(data="kind") if k == "customer"}
    cb = {n for n, k in b.nodes(data="kind") if k == "customer"}
    assert len(ca) == len(cb) == 10
    assert ca.isdisjoint(cb) and ca.isdisjoint(p.nodes("customer"))


def test_times_leave_as_months() -> None:
    g = export_graph(projection_of([row(i, bought=["lamp"],
                                        journey=[("web", "purchase", "lamp")])
                                    for i in range(5)]))
    assert not any("at" in d for *_, d in g.edges(data=True))
    ats = {d["months"] for *_, d in g.edges(data=True) if "months" in d}
    assert ats == {"2026-01"}


def test_names_never_overwrite(tmp_path: Path) -> None:
    p = projection_of(shop())
    paths = {export(p, format="json", directory=tmp_path, now=lambda: START).path
             for _ in range(3)}
    assert len(paths) == 3 and all(f.exists() for f in paths)


def test_bad_format_and_missing_directory_are_refused(tmp_path: Path) -> None:
    p = projection_of(shop())
    with pytest.raises(InputError):
        export(p, format="csv", directory=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        export(p, format="json", directory=tmp_path / "missing")
    with pytest.raises(InputError):
        export(p, format="json", directory=tmp_path, k=2)
