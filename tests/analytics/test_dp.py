"""Differentially private report counts: noise, parameters, and a budget kept in the trail."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacte.analytics import private_counts, report
from pacte.analytics.dp import MECHANISM, opendp_epsilon, opendp_noise, seeded_noise
from pacte.analytics.testing import projection_of, row
from pacte.cli import app
from pacte.errors import InputError, PrivacyBudgetSpent, PurposeNotGranted, StorageError
from pacte.features import analysts
from pacte.graph.policy import DEFAULT_PRIVACY_BUDGET
from pacte.graph.principals import Principal
from pacte.graph.session import Session
from pacte.runtime import Pacte
from tests.analytics.test_privacy import last_entries


def analyst(rt: Pacte) -> Principal:
    principal, _ = rt.create_principal(name="ana", role="analyst",
                                       purposes=["analytics", "service"])
    return principal


def set_budget(data: Path, privacy: str) -> None:
    """Replace the [privacy] table of the directory's policy file (an operator's edit)."""
    policy = data / "policy.toml"
    text = policy.read_text(encoding="utf-8")
    head, _, _ = text.partition("[privacy]\n")
    policy.write_text(f"{head}[privacy]\n{privacy}\n", encoding="utf-8")


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
    assert s.record_release("analytics.dp_release", details={"what": "a"},
                            epsilon=0.4) == pytest.approx(0.6)
    assert rt.session(who, "analytics").record_release(
        "analytics.dp_release", details={}, epsilon=0.4) == pytest.approx(0.2)
    entries = [e.record for e in last_entries(rt) if e.record["action"] == "analytics.dp_release"]
    assert [e["epsilon"] for e in entries] == [0.4, 0.4]
    assert entries[-1]["epsilon_spent_before"] == pytest.approx(0.4)
    data = rt.data_dir
    rt.close()
    with Pacte.open(data) as again:  # a new process: nothing in memory
        s = again.session(who, "analytics")
        assert s.privacy_spent() == pytest.approx(0.8)
        with pytest.raises(PrivacyBudgetSpent, match=r"0\.8 of 1 used"):
            s.record_release("analytics.dp_release", details={}, epsilon=0.4)
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
            s.record_release("analytics.dp_release", details={}, epsilon=bad)
    refused = [e.record for e in last_entries(rt) if e.record["action"] == "analytics.dp_release"]
    assert [r["outcome"] for r in refused] == ["denied", "denied"]
    assert s.privacy_spent() == 0


def test_releases_are_for_analysts_under_analytics(rt: Pacte) -> None:
    with pytest.raises(PurposeNotGranted):
        rt.session(analyst(rt), "service").record_release("analytics.dp_release", details={},
                                                          epsilon=0.1)


def test_cli_report_spends_and_then_refuses(rt: Pacte, out: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out)
    set_budget(rt.data_dir, "budget = 0.5")
    args = ["analytics", "report", "--epsilon", "0.3", "--data", str(rt.data_dir)]
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


def test_the_budget_comes_from_the_policy_and_a_caller_cannot_raise_it(rt: Pacte) -> None:
    who = analyst(rt)
    assert rt._backend.policy.privacy_budget(who.id) == DEFAULT_PRIVACY_BUDGET == 1.0
    s = rt.session(who, "analytics")
    for _ in range(5):
        s.record_release("analytics.dp_release", details={}, epsilon=0.2)
    with pytest.raises(PrivacyBudgetSpent):
        s.record_release("analytics.dp_release", details={}, epsilon=0.2)
    with pytest.raises(TypeError):  # no budget= any more
        s.record_release("analytics.dp_release", details={}, epsilon=0.2,
                         budget=50.0)  # type: ignore[call-arg]
    assert s.privacy_spent() == pytest.approx(1.0)
    # Only the operator raises it, by editing the policy file, which changes the
    # policy version recorded in every entry.
    data, before = rt.data_dir, rt._backend.policy.version
    rt.close()
    set_budget(data, f"budget = 1.0\n[privacy.principals]\n{who.id} = 1.5")
    with Pacte.open(data) as again:
        assert again._backend.policy.version != before
        assert again.session(who, "analytics").record_release(
            "analytics.dp_release", details={}, epsilon=0.4) == pytest.approx(0.1)
        entry = [e.record for e in last_entries(again)
                 if e.record["action"] == "analytics.dp_release"][-1]
        assert entry["epsilon_budget"] == 1.5
        assert entry["policy_version"] == again._backend.policy.version


def test_cli_has_no_budget_option(rt: Pacte, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(out)
    result = CliRunner().invoke(app, ["analytics", "report", "--epsilon", "0.3",
                                      "--budget", "50", "--data", str(rt.data_dir)])
    assert result.exit_code == 2 and "--budget" in result.stderr
    assert rt.operator_session("analytics").privacy_spent() == 0
    shutil.rmtree(out)


def test_concurrent_releases_cannot_both_pass_the_check(
        rt: Pacte, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads each release 0.8 of a 1.0 budget; each reads what was spent before
    either appends, unless the other waits for the trail's lock: one must be refused."""
    who = analyst(rt)
    state = {"read": 0, "waiting": 0}
    cond = threading.Condition()
    real_spent, real_exclusive = analysts._spent, rt._backend.audit_exclusive

    def spent(self: Session, ref: str) -> float:
        value = real_spent(self, ref)
        with cond:
            state["read"] += 1
            cond.notify_all()
            # Go on once the other thread has read too, or waits for our lock.
            cond.wait_for(lambda: state["read"] + state["waiting"] >= 2)
        return value

    @contextlib.contextmanager
    def exclusive() -> Iterator[None]:
        with cond:
            state["waiting"] += 1
            cond.notify_all()
        with real_exclusive():
            with cond:
                state["waiting"] -= 1
            yield

    monkeypatch.setattr(analysts, "_spent", spent)
    monkeypatch.setattr(rt._backend, "audit_exclusive", exclusive)
    outcomes: list[str] = []

    def release() -> None:
        try:
            rt.session(who, "analytics").record_release("analytics.dp_release", details={},
                                                        epsilon=0.8)
            outcomes.append("ok")
        except PrivacyBudgetSpent:
            outcomes.append("refused")

    threads = [threading.Thread(target=release) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    assert sorted(outcomes) == ["ok", "refused"]
    assert rt.session(who, "analytics").privacy_spent() == pytest.approx(0.8)


RELEASE = """
import sys
from pacte.errors import PrivacyBudgetSpent
from pacte.runtime import Pacte
with Pacte.open(sys.argv[1]) as rt:
    who = rt._backend.principals.get(sys.argv[2])
    try:
        rt.session(who, "analytics").record_release("analytics.dp_release", details={},
                                                    epsilon=0.6)
        print("ok")
    except PrivacyBudgetSpent:
        print("refused")
"""


def test_releases_from_two_processes_spend_the_budget_once(rt: Pacte) -> None:
    who = analyst(rt)
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", RELEASE, str(rt.data_dir), who.id],
                              cwd=root, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = sorted(p.communicate()[0].strip() for p in procs)
    assert outcomes == ["ok", "refused"]
    assert rt.session(who, "analytics").privacy_spent() == pytest.approx(0.6)


def test_the_trail_lock_excludes_other_connections_and_rolls_back_on_error(rt: Pacte
                                                                          ) -> None:
    from pacte.audit import AuditTrail

    other = AuditTrail.open(rt.data_dir / "audit.db", signer=None)
    try:
        other._db.execute("PRAGMA busy_timeout = 0")  # fail at once instead of queueing
        size = len(last_entries(rt))
        with rt._backend.audit.exclusive():
            rt._backend.audit.append({"action": "test.inside", "principal": "p"})
            with pytest.raises(StorageError) as caught:
                other.append({"action": "test.other", "principal": "p"})
            assert caught.value.retryable
        with pytest.raises(RuntimeError), rt._backend.audit.exclusive():
            rt._backend.audit.append({"action": "test.undone", "principal": "p"})
            raise RuntimeError("boom")
        actions = [e.record["action"] for e in last_entries(rt)]
        assert "test.inside" in actions and "test.undone" not in actions
        assert len(actions) >= size
        other.append({"action": "test.after", "principal": "p"})  # the lock is gone
    finally:
        other.close()


def test_cli_export_and_report_write_where_told_and_never_overwrite(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Pacte.init(data) as rt:
        rt.seed(60, seed=3)
    target = tmp_path / "out.gexf"
    result = CliRunner().invoke(app, ["analytics", "export", "--format", "gexf", "-o",
                                      str(target), "--k", "6", "--data", str(data)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(target) and target.is_file()
    assert "customer " in target.read_text(encoding="utf-8")  # labels for Gephi
    before = target.read_bytes()
    again = CliRunner().invoke(app, ["analytics", "export", "--format", "gexf", "-o",
                                     str(target), "--data", str(data)])
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert target.read_bytes() == before
    page = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["analytics", "report", "--output", str(page),
                                      "--data", str(data)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(page) and "data:image/png;base64," in page.read_text()
    with Pacte.open(data) as rt:
        spent = rt.operator_session("analytics").privacy_spent()
    refused = CliRunner().invoke(app, ["analytics", "report", "--epsilon", "0.1", "-o",
                                       str(page), "--data", str(data)])
    assert refused.exit_code == 1 and "already exists" in refused.stderr
    with Pacte.open(data) as rt:  # refused before any budget was spent
        assert rt.operator_session("analytics").privacy_spent() == spent
