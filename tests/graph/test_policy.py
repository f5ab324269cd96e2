from __future__ import annotations

from pathlib import Path

import pytest

from pacte.errors import ConfigError
from pacte.graph.policy import (
    DEFAULT_POLICY_TOML,
    DEFAULT_PRIVACY_BUDGET,
    Policy,
    category_covers,
)


def test_default_policy_matches_the_design() -> None:
    policy = Policy.default()
    assert set(policy.purposes) == {"service", "self_service", "marketing", "marketing.email",
                                    "marketing.sms", "personalization", "analytics", "legal"}
    assert policy.get("marketing.email").parent == "marketing"  # type: ignore[union-attr]
    assert policy.ancestors("marketing.sms") == ["marketing.sms", "marketing"]
    assert policy.get("service").may_use("user.contact.email")  # type: ignore[union-attr]
    email = policy.get("marketing.email")
    assert email is not None and email.needs_consent
    assert email.may_use("user.contact.email") and not email.may_use("user.contact.phone_number")
    legal = policy.get("legal")
    assert legal is not None and not legal.may_use("user.name") and legal.may_use(None)
    analytics = policy.get("analytics")
    assert analytics is not None and analytics.analysts_only
    assert not analytics.may_use("user.name") and not analytics.may_use("user.contact.email")


def test_category_covers_is_prefix_on_dots_only() -> None:
    assert category_covers("user.contact", "user.contact.email")
    assert category_covers("user", "user.contact.email")
    assert not category_covers("user.contact", "user.contactless")
    assert not category_covers("user.contact.email", "user.contact")


def test_version_is_a_hash_of_the_text() -> None:
    a = Policy.parse(DEFAULT_POLICY_TOML)
    b = Policy.parse(DEFAULT_POLICY_TOML + "\n# changed\n")
    assert a.version == Policy.default().version
    assert a.version != b.version and len(a.version) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[purpose]\nid='x'", "line 1"),
        ("title = 'no purposes'", "no [[purpose]]"),
        ("[[purpose]]\nid='x'\nlegal_basis='vibes'", "legal_basis"),
        ("[[purpose]]\nid='X'\nlegal_basis='consent'", "lowercase"),
        ("[[purpose]]\nid='x'\nlegal_basis='consent'\nparent='nope'", "unknown parent"),
        ("[[purpose]]\nid='x'\nlegal_basis='consent'\nretention_days=-1", "retention_days"),
        ("[[purpose]]\nid='x'\nlegal_basis='consent'\ncategories='user'", "categories"),
        ("[[purpose]]\nid='x'\nlegal_basis='consent'\ncolour='red'", "unknown key 'colour'"),
        ("[[purpose]]\nid='x'\nlegal_basis='consent'\n[[purpose]]\nid='x'\n"
         "legal_basis='consent'", "defined twice"),
        ("[[purpose]]\nid='a'\nlegal_basis='consent'\nparent='b'\n[[purpose]]\nid='b'\n"
         "legal_basis='consent'\nparent='a'", "cycle"),
    ],
)
def test_malformed_policies_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        Policy.parse(text, source="policy.toml")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        Policy.load(tmp_path / "nope.toml")


PURPOSE = "[[purpose]]\nid='x'\nlegal_basis='consent'\n"


def test_the_privacy_budget_is_set_by_the_policy_per_principal() -> None:
    assert Policy.default().privacy_budget("pr_anyone") == DEFAULT_PRIVACY_BUDGET == 1.0
    assert Policy.parse(PURPOSE).privacy_budget("pr_a") == DEFAULT_PRIVACY_BUDGET  # no table
    p = Policy.parse(PURPOSE + "[privacy]\nbudget = 0.5\n[privacy.principals]\npr_a = 2\n")
    assert p.privacy_budget("pr_a") == 2.0 and p.privacy_budget("pr_b") == 0.5


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ("budget = -1", "budget must be a finite number"),
        ("budget = 'lots'", "budget must be a finite number"),
        ("budget = inf", "budget must be a finite number"),
        ("budget = true", "budget must be a finite number"),
        ("limit = 1", "unknown key 'limit'"),
        ("principals = 3", "principals must be a table"),
        ("[privacy.principals]\npr_a = -0.5", "principals.pr_a must be"),
    ],
)
def test_a_bad_privacy_table_is_refused(privacy: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.parse(f"{PURPOSE}[privacy]\n{privacy}\n")
