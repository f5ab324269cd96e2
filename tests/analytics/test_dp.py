"""Differentially private report counts: noise, parameters, and a budget kept in the trail."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacte.analytics import private_counts, report
from pacte.analytics.dp import MECHANISM, opendp_epsilon, opendp_noise, seeded_noise
from pacte.analytics.testing import projection_of, row
from pacte.cli import app
from pacte.errors import InputError, PrivacyBudgetSpent, PurposeNotGranted
from pacte.graph.principals import Principal
from pacte.runtime import Pacte
from tests.analytics.test_privacy import last_entries


def analyst(rt: Pacte) -> Principal:
    principal, _ = rt.create_principal(name="ana", role="analyst",
                                       purposes=["analytics", "service"])
    return principal


def shop(n: int = 40) -> list:
    return [row(i, journey=[("web", "visit", None)] + ([("app", "visit", None)] if i % 2 else []))
            for i in range(n)]


def test_noise_is_injectable_and_scaled_to_the_sensitivity() -> None:
    p = projection_of(shop())
    a = private_counts(p, epsilon=0.5, noise=seeded_noise(7))
    b = private_counts(p, epsilon=0.5, noise=seeded_noise(7))
    assert a == b  # the same seed, the same release
    assert a.customers_scale == 4.0 and a.channels_scale == 36.0  # 2/eps, 2*9/eps
    exact = private_counts(p, epsilon=0.5, noise=lambda v, s: v)
    assert exact.customers == 40 and exact.channels["web"] == 40 and exact.channels["app"] == 20
    assert exact.channels["iot"] == 0  # every public channel is released, empty or not
    assert all(v >= 0 for v in private_counts(p, epsilon=0.01,
                                              noise=seeded_noise(1)).channels.values())


def test_opendp_confirms_the_epsilon_of_each_share() -> None:
    c = private_counts(projection_of(shop()), epsilon=0.4, noise=seeded_noise(1))
    assert opendp_epsilon(1, c.customers_scale) == pytest.approx(0.2)
    assert opendp_epsilon(9, c.channels_scale) == pytest.approx(0.2)
    assert isinstance(opendp_noise(10, 2.0), int)


def test_bad_epsilon_is_refused() -> None:
    for bad in (0, -1, 11, "1"):
        with pytest.raises(InputError):
            private_counts(projection_of(shop()), epsilon=bad)  # type: ignore[arg-type]


def test_report_says_which_figures_are_noisy_and_hides_their_exact_values(tmp_path: Path
                                                                          ) -> None:
    p = projection_of(shop(47))
    private = private_counts(p, epsilon=1.0, noise=lambda v, s: v + 1000)
    html = report(p, directory=tmp_path, private=private).read_text(encoding="utf-8")
    assert "1047 (noisy)" in html and "Customers: 47" not in html
    assert "epsilon = 1" in html and "scale 2" in html and "scale 18" in html
    assert "Exact with suppression" in html and MECHANISM.split(" (")[0] in html
    plain = report(p, directory=tmp_path).read_text(encoding="utf-8")
    assert "No figure in this report is noisy" in plain


def test_budget_is_spent_in_the_trail_refused_when_gone_and_survives_a_restart(
        rt: Pacte) -> None:
    who = analyst(rt)
    s = rt.session(who, "analytics")
    assert s.privacy_spent() == 0
    assert s.record_release("analytics.dp_release", details={"what": "a"}, epsilon=0.4,
                            budget=1.0) == pytest.approx(0.6)
    assert rt.session(who, "analytics").record_release(
        "analytics.dp_release", details={}, epsilon=0.4, budget=1.0) == pytest.approx(0.2)
    entries = [e.record for e in last_entries(rt) if e.record["action"] == "analytics.dp_release"]
    assert [e["epsilon"] for e in entries] == [0.4, 0.4]
    assert entries[-1]["epsilon_spent_before"] == pytest.approx(0.4)
    data = rt.data_dir
    rt.close()
    with Pacte.open(data) as again:  # a new process: nothing in memory
        s = again.session(who, "analytics")
        assert s.privacy_spent() == pytest.approx(0.8)
        with pytest.raises(PrivacyBudgetSpent, match=r"0\.8 of 1 used"):
            s.record_release("analytics.dp_release", details={}, epsilon=0.4, budget=1.0)
        refused = [e.record for e in last_entries(again)
                   if e.record["action"] == "analytics.dp_release"][-1]
        assert refused["outcome"] == "denied" and refused["reason"] == "PRIVACY_BUDGET_SPENT"
        assert s.privacy_spent() == pytest.approx(0.8)  # a refusal spends nothing
        # Budgets are per principal: another analyst starts at zero.
        other, _ = again.create_principal(name="bo", role="analyst", purposes=["analytics"])
        assert again.session(other, "analytics").privacy_spent() == 0


def test_an_epsilon_over_the_budget_is_refused_and_audited(rt: Pacte) -> None:
    s = rt.session(analyst(rt), "analytics")
    for bad in (0.0 - 1, 2.0):
        with pytest.raises(InputError, match="epsilon must be"):
            s.record_release("analytics.dp_release", details={}, epsilon=bad, budget=1.0)
    refused = [e.record for e in last_entries(rt) if e.record["action"] == "analytics.dp_release"]
    assert [r["outcome"] for r in refused] == ["denied", "denied"]
    assert s.privacy_spent() == 0


def test_releases_are_for_analysts_under_analytics(rt: Pacte) -> None:
    with pytest.raises(PurposeNotGranted):
        rt.session(analyst(rt), "service").record_release("analytics.dp_release", details={},
                                                          epsilon=0.1, budget=1.0)


def test_cli_report_spends_and_then_refuses(rt: Pacte, out: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out)
    args = ["analytics", "report", "--epsilon", "0.3", "--budget", "0.5",
            "--data", str(rt.data_dir)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert "epsilon 0.3 spent, 0.2 of the budget left" in first.stdout
    html = Path(first.stdout.splitlines()[0]).read_text(encoding="utf-8")
    assert "(noisy)" in html
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 1 and "privacy budget spent" in second.stderr
    assert "Traceback" not in second.stderr
    assert len(list(out.glob("*.html"))) == 1  # nothing released the second time
    shutil.rmtree(out)
