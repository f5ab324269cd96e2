"""Each analysis on hand-made projections: the answers, and the 4-hidden / 5-shown line."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from pathlib import Path

import networkx as nx
import pytest

from pacte.analytics import (
    bought_together,
    channel_mix,
    communities,
    copurchase_graph,
    findings,
    product_journeys,
    purchase_journeys,
    ratings,
    referral_weight,
    report,
)
from pacte.analytics.projection import Projection, _detail, build_projection, pseudonym
from pacte.analytics.testing import START, Rows, projection_of, row
from pacte.errors import InputError

KEY = b"k" * 32


def crowd(size: int, start: int = 0, **kwargs: object) -> list:
    return [row(start + i, **kwargs) for i in range(size)]  # type: ignore[arg-type]


# -- the projection -----------------------------------------------------------------


def test_customer_nodes_carry_only_segment_and_age_band() -> None:
    secret = {"name": "Zelda Quorn", "email": "zq@example.com", "phone": "+15550100",
              "birth_date": "1990-04-17", "created_at": 1_700_000_000_000_000,
              "address": "1 Quorn Lane", "ciphertext": b"\x01\x02secret"}
    p = projection_of([row(1, extra=secret, bought=["lamp"], devices=["bulb"])], key=KEY)
    me = pseudonym(KEY, "c_1")
    assert _detail(p).nodes[me] == {"kind": "customer", "segment": "gold", "age_band": "30-39"}
    assert "c_1" not in _detail(p)
    for _, data in _detail(p).nodes(data=True):
        assert not any(isinstance(v, bytes) for v in data.values())


def test_odd_field_values_are_dropped_not_stringified() -> None:
    p = projection_of([row(1, segment=None, age_band=b"\x00cipher")], key=KEY)  # type: ignore[arg-type]
    assert _detail(p).nodes[pseudonym(KEY, "c_1")] == {"kind": "customer"}


def test_relations_become_edges_with_times() -> None:
    p = projection_of([row(1, bought=["lamp"], ratings={"lamp": 4}, devices=["bulb"],
                           journey=[("web", "purchase", "lamp")], referred=[2]),
                       row(2)], key=KEY)
    me, peer = pseudonym(KEY, "c_1"), pseudonym(KEY, "c_2")
    rels = {d["rel"]: (dst, d) for _, dst, d in _detail(p).out_edges(me, data=True)}
    assert set(rels) == {"member_of", "bought", "reviewed", "interacted", "owns", "referred"}
    assert rels["bought"][0] == "product:lamp" and isinstance(rels["bought"][1]["at"], datetime)
    assert rels["reviewed"][1]["rating"] == 4
    assert rels["interacted"][0] == "channel:web"
    assert rels["interacted"][1]["product"] == "product:lamp"
    assert rels["owns"][0] == "device:bulb" and rels["member_of"][0] == "segment:gold"
    assert rels["referred"][0] == peer
    assert {_detail(p).nodes[n]["kind"] for n in _detail(p)} == {
        "customer", "product", "channel", "segment", "device"}
    assert p.anonymity.customers == 2 and p.built_at == START


def test_projections_without_a_key_share_no_pseudonym() -> None:
    rows = crowd(50)
    a, b = projection_of(rows), projection_of(rows)
    assert set(a.nodes("customer")).isdisjoint(b.nodes("customer"))
    assert a.customers == b.customers == 50


def test_a_short_key_is_refused() -> None:
    with pytest.raises(InputError):
        build_projection(Rows([]), key=b"short")


def test_unknown_node_kind_is_refused() -> None:
    with pytest.raises(InputError):
        projection_of([]).nodes("email")


# -- the 4 / 5 line, analysis by analysis ---------------------------------------------


def test_bought_together_pairs_of_four_are_hidden_of_five_shown() -> None:
    p = projection_of(crowd(5, bought=["lamp", "bulb"]) + crowd(4, 100, bought=["desk", "chair"]))
    found = bought_together(p)
    assert [(x.a, x.b, x.customers) for x in found.pairs] == [
        ("product:bulb", "product:lamp", 5)]
    assert found.suppressed == 1
    g = copurchase_graph(p)
    assert set(g) == {"product:bulb", "product:lamp"}
    assert g.edges["product:bulb", "product:lamp"]["weight"] == 5


def test_a_pair_counts_distinct_customers_not_purchases() -> None:
    p = projection_of(crowd(4, bought=["lamp", "bulb", "lamp", "bulb"]))
    assert bought_together(p).pairs == []


def test_journeys_of_four_are_hidden_of_five_shown() -> None:
    five = [("email", "campaign", None), ("store", "purchase", "lamp")]
    four = [("sms", "campaign", None), ("web", "purchase", "lamp")]
    p = projection_of(crowd(5, journey=five) + crowd(4, 100, journey=four))
    j = purchase_journeys(p)
    assert [(p.path, p.customers) for p in j.paths] == [(("email", "store"), 5)]
    assert j.suppressed == 1


def test_journeys_restart_after_each_purchase_and_collapse_repeats() -> None:
    steps = [("web", "visit", None), ("web", "visit", None), ("app", "purchase", "lamp"),
             ("email", "campaign", None), ("store", "purchase", "bulb")]
    j = purchase_journeys(projection_of(crowd(5, journey=steps)))
    assert {p.path for p in j.paths} == {("web", "app"), ("email", "store")}


def test_product_journeys_need_five_buyers() -> None:
    steps = [("web", "visit", None), ("app", "purchase", "lamp"), ("chat", "support", "lamp")]
    assert product_journeys(projection_of(crowd(4, journey=steps)), product="lamp").customers \
        is None
    pj = product_journeys(projection_of(crowd(5, journey=steps)), product="product:lamp")
    assert pj.customers == 5
    assert [p.path for p in pj.before.paths] == [("web", "app")]
    assert [p.path for p in pj.after.paths] == [("chat",)]


def test_channel_mix_of_four_hidden_five_shown() -> None:
    p = projection_of(crowd(5, journey=[("web", "visit", None)])
                      + crowd(5, 100, journey=[("app", "visit", None)])
                      + crowd(4, 200, journey=[("sms", "visit", None)]))
    mix = channel_mix(p).customers
    assert "sms" not in mix.counts
    # sms alone (4) could be derived from the total: one more channel goes with it.
    assert mix.other == 9 and len(mix.counts) == 1


def test_ratings_of_four_hidden_five_shown() -> None:
    p = projection_of(crowd(5, ratings={"lamp": 5}) + crowd(4, 100, ratings={"desk": 1}))
    r = ratings(p)
    assert [(x.label, x.reviewers, x.mean, x.stars.counts) for x in r.products] == [
        ("lamp", 5, 5.0, {"5": 5})]
    assert r.suppressed == 1


def test_ratings_count_each_customer_once_with_the_latest_rating() -> None:
    p = projection_of(crowd(5, ratings={"lamp": 2}))
    g = _detail(p)
    for c in [n for n, kind in g.nodes(data="kind") if kind == "customer"]:  # a later review
        g.add_edge(c, "product:lamp", rel="reviewed", at=START.replace(year=2027), rating=4)
    (only,) = ratings(p).products
    assert only.reviewers == 5 and only.mean == 4.0


def test_communities_of_four_hidden_five_shown() -> None:
    p = projection_of(crowd(5, segment="gold", bought=["lamp", "bulb"])
                      + crowd(4, 100, segment="green", bought=["seeds", "hose"]))
    found = communities(p)
    assert [c.customers for c in found.communities] == [5]
    assert found.communities[0].segments.counts == {"gold": 5}
    assert found.suppressed == 1 and found.in_suppressed is None


def test_communities_are_described_without_members() -> None:
    p = projection_of(crowd(30, bought=["lamp", "bulb"], journey=[("web", "visit", None)]),
                      key=KEY)
    found = communities(p)
    text = repr(found)
    assert not any(n in text for n in p.nodes("customer"))
    assert "customer:" not in text


def test_communities_are_reproducible() -> None:
    rows = [row(i, bought=[f"p{i % 7}", f"p{(i * 3) % 11}"], referred=[(i + 1) % 60])
            for i in range(60)]
    assert communities(projection_of(rows)) == communities(projection_of(rows))


def test_referral_weight_reports_distributions_only() -> None:
    rows = [row(0, referred=range(1, 30)), *crowd(59, 1)]
    w = referral_weight(projection_of(rows))
    assert w.customers == 60 and w.referrals == 29 and w.referrers is None  # one referrer
    assert w.quantiles and all(0.0 < q < 1.0 for q in w.quantiles)
    assert 0.99 not in w.quantiles  # only one customer above it
    assert all(b.customers >= 5 for b in w.histogram)
    assert sum(b.customers for b in w.histogram) == 60


def test_referral_weight_of_four_customers_is_all_hidden() -> None:
    w = referral_weight(projection_of([row(0, referred=[1, 2, 3]), *crowd(3, 1)]))
    assert w.customers is None and w.histogram == [] and w.quantiles == {}


def test_own_pagerank_agrees_with_the_reference_definition() -> None:
    from pacte.analytics.referrals import _pagerank

    g = nx.gnp_random_graph(40, 0.08, seed=3, directed=True)
    ours = _pagerank(g, alpha=0.85)
    # The fixed point: r = (1-a)/n + a * (sum of in-neighbour shares + dangling mass / n).
    n = len(g)
    dangling = sum(ours[v] for v in g if g.out_degree(v) == 0)
    for v in g:
        expected = (1 - 0.85) / n + 0.85 * (
            sum(ours[u] / g.out_degree(u) for u in g.predecessors(v)) + dangling / n)
        assert ours[v] == pytest.approx(expected, abs=1e-9)
    assert sum(ours.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [bought_together, channel_mix, communities, purchase_journeys,
                                ratings, referral_weight, findings])
def test_every_analysis_refuses_a_lower_k(fn: object) -> None:
    with pytest.raises(InputError):
        fn(projection_of(crowd(10)), k=4)  # type: ignore[operator]


# -- plots: what is hidden is not drawn either ----------------------------------------


def test_report_plots_leave_out_groups_of_four(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    drawn: list[str] = []
    original = Figure.savefig

    def capture(self: Figure, *args: object, **kwargs: object) -> None:
        for ax in self.axes:
            labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
            drawn.extend(labels)
            drawn.extend(t.get_text() for t in ax.texts)
            legend = ax.get_legend()
            if legend is not None:
                drawn.extend(t.get_text() for t in legend.get_texts())
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    five = [("email", "campaign", None), ("store", "purchase", "lamp")]
    four = [("sms", "campaign", None), ("chat", "purchase", "desk")]
    p = projection_of(crowd(5, segment="gold", bought=["lamp"], journey=five)
                      + crowd(5, 50, segment="gold", bought=["lamp"],
                              journey=[("web", "visit", None)])
                      + crowd(4, 100, segment="rare", bought=["desk"], journey=four))
    page = report(p, directory=tmp_path)
    assert "email > store" in drawn and "email" in drawn and "gold" in drawn
    for absent in ("sms", "chat", "sms > chat", "rare"):
        assert absent not in drawn, absent
    html = page.read_text(encoding="utf-8")
    for absent in ("sms", "chat", "desk", "rare"):
        assert absent not in html, absent
    assert "email &gt; store" in html
    # One self-contained file: the four plots are PNGs inlined as data URIs.
    assert list(tmp_path.iterdir()) == [page]
    inlined = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(inlined) == 4
    assert all(base64.b64decode(png)[:4] == b"\x89PNG" for png in inlined)


def test_report_of_a_tiny_projection_shows_nothing(tmp_path: Path) -> None:
    page = report(projection_of(crowd(4, bought=["lamp"])), directory=tmp_path)
    html = page.read_text(encoding="utf-8")
    assert "lamp" not in html and "Nothing to show" in html


def test_report_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        report(projection_of([]), directory=tmp_path / "nope")


def _unused(p: Projection) -> None:  # keeps the import used for type checkers
    del p
