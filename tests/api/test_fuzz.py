"""Property-based fuzzing over the whole schema (hypothesis-graphql), and the known attacks.

Valid documents are generated from the committed SDL, with ids drawn from the real
customers and products so queries reach data; invalid ones (negative mode) check the
error path; strings include lone surrogates, page sizes and cursors go out of range.
After every request (see `Probe`):

- the status is below 500, and neither the response nor any log holds a traceback or
  an unexpected error (pacte logs one for every INTERNAL);
- no personal value is in an error message, and under `marketing.email` none of a
  customer who has not opted in is anywhere in the response (G3);
- a request that changed the store left an audit entry for a write (G6: never a
  committed write without its record).

Bounded for the normal suite (a few hundred cases, seconds). `PACTE_FUZZ_EXAMPLES=N`
runs about N cases in all; `PACTE_FUZZ_SEED=S` replays a run: the seed is printed
with any failure.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from pacte.api import create_app, sdl
from pacte.graph.model import CHANNELS
from tests.api.conftest import Api, make_world, personal_values
from tests.helpers import World

TOTAL = int(os.environ.get("PACTE_FUZZ_EXAMPLES") or 0)
SEED = int(os.environ.get("PACTE_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
# Shares of the cases: valid queries, invalid documents, mutations.
SHARES = {"queries": (0.5, 100), "invalid": (0.2, 50), "mutations": (0.3, 60)}
HIDDEN_FOR_EMAIL = ("none", "withdrawn", "expired", "other_child")
CALLERS = [("app", "service"), ("app", "marketing.email"), ("app", "self_service"),
           ("app", "personalization"), ("auditor", "legal"), ("analyst", "analytics")]
WRITES = frozenset({"customer.write", "interaction.write", "consent.grant",
                    "consent.withdraw", "customer.erase"})


def _settings(kind: str) -> settings:
    share, default = SHARES[kind]
    return settings(max_examples=max(1, int(TOTAL * share)) if TOTAL else default,
                    deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.filter_too_much])


class _Errors(logging.Handler):
    """Collects what pacte logs at ERROR: an unexpected exception somewhere."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Probe:
    world: World
    api: Api
    secrets: set[str]
    hidden: set[str]
    errors: _Errors = field(default_factory=_Errors)
    count: int = 0

    def _changes(self) -> int:
        changes: int = self.world.rt._backend.store._db.total_changes  # type: ignore[attr-defined]
        return changes

    def _write_audited(self, after_seq: int) -> bool:
        for entry in self.world.rt._backend.audit.entries(after_seq=after_seq, limit=100):
            record = entry.record
            # A merged entry lists its operations, each with an outcome only if not ok.
            ops = record.get("operations")
            steps = [(op.get("action"), op.get("outcome", "ok")) for op in ops] if ops \
                else [(record.get("action"), record.get("outcome"))]
            if any(action in WRITES and outcome == "ok" for action, outcome in steps):
                return True
        return False

    def check(self, query: str, role: str | None, purpose: str | None, *,
              variables: dict[str, Any] | None = None) -> dict[str, Any]:
        self.count += 1
        rt = self.world.rt
        changes, seq = self._changes(), rt._backend.audit.size() - 1
        logged = len(self.errors.records)
        r = self.api.post(query, key=self.world.keys[role] if role else None, purpose=purpose,
                          variables=variables)
        where = (query, role, purpose, variables)
        assert r.status_code < 500, (*where, r.text)
        assert "Traceback" not in r.text, where
        assert len(self.errors.records) == logged, (
            *where, [rec.getMessage() for rec in self.errors.records[logged:]])
        if self._changes() != changes:
            assert self._write_audited(seq), ("a write committed without its audit entry",
                                              *where, r.text)
        body: dict[str, Any] = r.json()
        errors = json.dumps(body.get("errors", []))
        assert not [v for v in self.secrets if v in errors], where
        if purpose == "marketing.email":
            # A value the client sent itself (an eventId echoed back) is not a leak.
            sent = query + json.dumps(variables or {})
            assert not [v for v in self.hidden if v in r.text and v not in sent], (where, r.text)
        return body


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    world = make_world(tmp_path_factory.mktemp("fuzz"))
    api = Api(create_app(world.rt))
    hidden = {v for state in HIDDEN_FOR_EMAIL
              for v in world.plaintext[world.customers[state]].values() if len(v) > 12}
    p = Probe(world, api, personal_values(world), hidden)
    logger = logging.getLogger("pacte")
    logger.addHandler(p.errors)
    yield p
    print(f"\nfuzz: {p.count} requests checked (seed {SEED})")
    logger.removeHandler(p.errors)
    api.close()
    world.rt.close()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _scalars(world: World) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    ids = [*world.customers.values(), world.product, "c_000000000000", "p_0001"]
    words = [*CHANNELS, *world.rt._backend.policy.purposes, "purchase", "support", "visit",
             *(v["email"] for v in world.plaintext.values())]
    cursors = [_b64("99999999999999999999999:x"), _b64("seq:99999999999999999999999"),
               _b64(f"{2**63}:{ids[0]}"), _b64("seq:-1"), _b64("0:" + ids[0]), "%%%"]
    # Any code point, lone surrogates included: JSON carries them as \\ud800.
    anything = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
    return {
        "String": st.one_of(st.sampled_from(words + cursors), st.text(max_size=20),
                            anything).map(lambda v: graphql.StringValueNode(value=v)),
        "ID": st.one_of(st.sampled_from(ids), st.text(max_size=12), anything).map(
            lambda v: graphql.StringValueNode(value=v)),
        # Mostly valid page sizes, so generated queries reach data; some out of range.
        "Int": st.one_of(st.integers(0, 30), st.integers(-(2**31), 2**31 - 1)).map(
            lambda n: graphql.IntValueNode(value=str(n))),
        "Float": st.one_of(st.floats(-1e6, 1e6), st.floats(allow_nan=False)).map(
            lambda f: graphql.FloatValueNode(value=repr(f))),
        "DateTime": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                 timezones=st.just(UTC)).map(
            lambda d: graphql.StringValueNode(value=d.isoformat())),
    }


def _replay(exc: BaseException) -> None:
    exc.add_note(f"fuzz seed: replay with PACTE_FUZZ_SEED={SEED}")


def _fuzz(probe: Probe, kind: str, documents: st.SearchStrategy[str]) -> None:
    @seed(SEED)
    @_settings(kind)
    @given(query=documents, caller=st.sampled_from(CALLERS))
    def run(query: str, caller: tuple[str, str]) -> None:
        probe.check(query, *caller)

    try:
        run()
    except BaseException as exc:
        _replay(exc)
        raise


def test_fuzz_queries(probe: Probe) -> None:
    _fuzz(probe, "queries", queries(sdl(), custom_scalars=_scalars(probe.world),
                                    allow_x00=False))


def test_fuzz_invalid_queries(probe: Probe) -> None:
    _fuzz(probe, "invalid", queries(sdl(), mode=Mode.NEGATIVE,
                                    custom_scalars=_scalars(probe.world)))


def test_fuzz_mutations(probe: Probe) -> None:
    _fuzz(probe, "mutations", mutations(sdl(), custom_scalars=_scalars(probe.world),
                                        allow_x00=False))


# -- the attacks of issue 14, by hand: each must be refused cleanly, with its code --------

_NESTED = ("customers(first: 100) { edges { node { interactions(first: 100) "
           "{ edges { node { summary amount } } } } } }")
_RECORD = ("mutation($c: ID!, $d: DateTime) { recordInteraction(input: {customerId: $c, "
           'channel: email, kind: visit, eventId: "fuzz-date", occurredAt: $d}) { id } }')


@pytest.mark.parametrize(("query", "variables", "caller", "code"), [
    pytest.param(  # 1: a lone surrogate after writes, in one document
        "mutation($c: ID!, $bad: ID!) { withdrawConsent(customerId: $c, purpose: "
        '"marketing.email") { status } upsertCustomer(input: {id: $c, segment: "vip"}) '
        "{ id } exportCustomer(customerId: $bad) }",
        {"c": "granted", "bad": "c_\ud800"}, ("app", "self_service"), "BAD_INPUT",
        id="surrogate-after-writes"),
    pytest.param("query($e: String!) { customerByEmail(email: $e) { id } }",
                 {"e": "a\udfff@example.com"}, ("app", "service"), "BAD_INPUT",
                 id="surrogate-email"),
    pytest.param(_RECORD, {"c": "granted", "d": "9999-12-31T23:59:59-14:00"},
                 ("app", "service"), "BAD_INPUT", id="date-year-10000"),
    pytest.param(_RECORD, {"c": "granted", "d": "0001-01-01T00:00:00+14:00"},
                 ("app", "service"), "BAD_INPUT", id="date-year-0"),
    pytest.param("{ " + " ".join(f"a{i}: {_NESTED}" for i in range(27)) + " }", None,
                 ("app", "service"), "QUERY_TOO_COSTLY", id="nested-pages-x27"),
    pytest.param("query($c: ID!, $a: String) { customer(id: $c) { interactions(after: $a) "
                 "{ edges { cursor } } } }", {"c": "granted",
                                               "a": _b64("99999999999999999999999:x")},
                 ("app", "service"), "BAD_INPUT", id="cursor-interactions"),
    pytest.param("query($a: String) { auditTrail(after: $a) { edges { cursor } } }",
                 {"a": _b64("seq:99999999999999999999999")}, ("auditor", "legal"),
                 "BAD_INPUT", id="cursor-audit-trail"),
    pytest.param("query($c: ID!, $a: String) { myDataUses(customerId: $c, after: $a) "
                 "{ edges { cursor } } }", {"c": "granted",
                                            "a": _b64("seq:99999999999999999999999")},
                 ("app", "self_service"), "BAD_INPUT", id="cursor-my-data-uses"),
    pytest.param("query($c: ID!) { myDataUses(customerId: $c) { edges { cursor } } }",
                 {"c": "granted"}, ("analyst_self", "self_service"), "FORBIDDEN",
                 id="analyst-my-data-uses"),
    pytest.param("{ me { name } }", None, ("app", "x" * 8000), "UNKNOWN_PURPOSE",
                 id="huge-purpose"),
    pytest.param("{ me { name } }", None, (None, "service"), "UNAUTHENTICATED",
                 id="no-key"),
])
def test_known_attacks_are_refused_cleanly(
        probe: Probe, query: str, variables: dict[str, Any] | None,
        caller: tuple[str | None, str], code: str) -> None:
    world = probe.world
    if caller[0] == "analyst_self" and "analyst_self" not in world.keys:
        _principal, world.keys["analyst_self"] = world.rt.create_principal(
            name="analyst-self", role="analyst", purposes=["analytics", "self_service"])
        world.rt.authenticate(world.keys["analyst_self"])  # first use noted (see build_world)
    if variables is not None:
        variables = {k: world.customers.get(v, v) if isinstance(v, str) else v
                     for k, v in variables.items()}
    body = probe.check(query, *caller, variables=variables)
    assert [e["extensions"]["code"] for e in body["errors"]][:1] == [code], body
