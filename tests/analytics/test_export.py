"""Exports on hand-made projections: formats round-trip, small groups and rare traits go."""

from __future__ import annotations

import json
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
def test_groups_of_four_leave_with_their_edges_five_stay(tmp_path: Path, fmt: str) -> None:
    path = export(projection_of(shop()), format=fmt, directory=tmp_path)  # type: ignore[arg-type]
    g = read(path)
    kinds = {n: d.get("kind") for n, d in g.nodes(data=True)}
    things = sorted(n for n, k in kinds.items() if k != "customer")
    # lamp: 6 buyers, bulb: 5 owners, gold: 9 members; desk, plug: 4; solo: 1.
    assert things == ["device:bulb", "product:lamp", "segment:gold"]
    assert sum(1 for k in kinds.values() if k == "customer") == 10
    assert all(a in kinds and b in kinds for a, b in g.edges())
    assert int(g.nodes["product:lamp"]["customers"]) == 6


def test_rare_traits_are_dropped_from_customers() -> None:
    g = export_graph(projection_of(shop()))
    traits = list((d.get("segment"), d.get("age_band"))
                    for _, d in g.nodes(data=True) if d["kind"] == "customer")
    # 30-39 gold: 5 customers, kept; 50-59 gold: 4, band dropped; solo: both dropped.
    assert traits.count(("gold", "30-39")) == 5
    assert traits.count(("gold", None)) == 4
    assert traits.count((None, None)) == 1


def test_referrals_between_pseudonyms_survive() -> None:
    g = export_graph(projection_of(shop()))
    referrals = [(a, b) for a, b, rel in g.edges(data="rel") if rel == "referred"]
    assert len(referrals) == 1
    assert all(a.startswith("customer:") and b.startswith("customer:") for a, b in referrals[:1])


def test_every_export_has_its_own_pseudonyms(tmp_path: Path) -> None:
    p = projection_of(shop())
    a, b = export_graph(p), export_graph(p)
    ca = {n for n, k in a.nodes(data="kind") if k == "customer"}
    cb = {n for n, k in b.nodes(data="kind") if k == "customer"}
    assert len(ca) == len(cb) == 10
    assert ca.isdisjoint(cb) and ca.isdisjoint(p.nodes("customer"))


def test_times_leave_as_days() -> None:
    g = export_graph(projection_of([row(i, bought=["lamp"],
                                        journey=[("web", "purchase", "lamp")])
                                    for i in range(5)]))
    ats = {d["at"] for *_, d in g.edges(data=True) if "at" in d}
    assert ats and all(len(a) == 10 and a.startswith("2026-01-") for a in ats)


def test_names_never_overwrite(tmp_path: Path) -> None:
    p = projection_of(shop())
    paths = {export(p, format="json", directory=tmp_path, now=lambda: START)
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
