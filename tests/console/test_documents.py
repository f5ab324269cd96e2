"""Part 3 of issue 20: the controller and the processing details set in policy.toml,
used in the Art. 30 record; the CLI's reports as text, HTML or JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pacte import Pacte
from pacte.errors import ConfigError
from pacte.graph.policy import DEFAULT_POLICY_TOML, Policy

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = """
[controller]
name = "Example Ltd"
address = "1 Quay Street, Dublin"
contact = "privacy@example.com"
dpo = "dpo@example.com"
"""


def with_settings(text: str) -> str:
    # Recipients and transfers for one purpose, set in its own table.
    text = text.replace('id = "marketing.email"\n', 'id = "marketing.email"\nrecipients = '
                        '["Mail provider (processor)"]\ntransfers = ["USA: standard '
                        'contractual clauses"]\n')
    return text + SETTINGS


def test_the_policy_sets_the_controller_recipients_and_transfers() -> None:
    policy = Policy.parse(with_settings(DEFAULT_POLICY_TOML))
    assert policy.controller == {"name": "Example Ltd", "address": "1 Quay Street, Dublin",
                                 "contact": "privacy@example.com", "dpo": "dpo@example.com"}
    email = policy.purposes["marketing.email"]
    assert email.recipients == ("Mail provider (processor)",)
    assert email.transfers == ("USA: standard contractual clauses",)
    with pytest.raises(ConfigError, match="unknown key 'ceo'"):
        Policy.parse(DEFAULT_POLICY_TOML + '\n[controller]\nceo = "x"\n')
    with pytest.raises(ConfigError, match="recipients must be a list of strings"):
        Policy.parse(DEFAULT_POLICY_TOML.replace('id = "service"\n',
                                                 'id = "service"\nrecipients = "x"\n'))


def run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pacte", *args, "--data", str(data)],
                          cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    with Pacte.init(path) as rt:
        view = rt.operator_session("service").upsert_customer(
            name="Ada Quorn", email="ada.quorn@example.com")
        rt.operator_session("self_service").grant_consent(view.id, "marketing.email",
                                                          source="web")
    policy = path / "policy.toml"
    policy.write_text(with_settings(policy.read_text(encoding="utf-8")), encoding="utf-8")
    (path / "customer").write_text(view.id, encoding="utf-8")
    return path


def test_processing_record_in_three_formats(data: Path) -> None:
    record = json.loads(run(data, "audit", "processing-record").stdout)
    assert record["controller"]["dpo"] == "dpo@example.com"
    email = next(a for a in record["activities"] if a["purpose"] == "marketing.email")
    assert email["recipients"] == ["Mail provider (processor)"]
    assert email["transfers"] == ["USA: standard contractual clauses"]
    text = run(data, "audit", "processing-record", "--format", "text").stdout
    assert "Controller: Example Ltd" in text and "Data protection officer: dpo@" in text
    assert "transfers: USA: standard contractual clauses" in text
    html = run(data, "audit", "processing-record", "--format", "html").stdout
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert "Mail provider (processor)" in html
    bad = run(data, "audit", "processing-record", "--format", "xml")
    assert bad.returncode == 2 and "--format must be one of" in bad.stderr


def test_access_report_for_the_customer_in_plain_words(data: Path) -> None:
    customer = (data / "customer").read_text(encoding="utf-8")
    text = run(data, "audit", "access-report", "--customer", customer, "--format",
               "text").stdout
    assert "by Example Ltd (data protection officer: dpo@example.com)" in text
    assert "on the basis of the contract with you" in text
    assert "recorded your consent to marketing.email" in text
    assert "How to object:" in text
    assert "ada" not in text.lower()  # the report names no personal value
    html = run(data, "audit", "access-report", "--customer", customer, "--format",
               "html").stdout
    assert "How to object" in html and "<script" not in html
    report = json.loads(run(data, "audit", "access-report", "--customer", customer).stdout)
    assert report["uses"] and report["checkpoint"]
