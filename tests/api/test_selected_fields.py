"""Decrypt only what is returned (DESIGN.md §9): a query opens the fields it selects.

The session is told which Customer and Interaction fields a query selects (through
fragments, aliases and @skip/@include too); it decrypts those only, never one the
purpose may not use (G4), and the request's audit entry lists exactly what it opened.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, make_world
from tests.conftest import MODES, backend_uri
from tests.helpers import World, record_decrypts


@pytest.fixture(scope="module", params=MODES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    """On Neo4j the customer resolver reads through a prefetched neighbourhood."""
    w = make_world(tmp_path_factory.mktemp("api-selected"), store_uri=backend_uri(request))
    yield w
    w.rt.close()


@pytest.fixture
def opened(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the fields decrypted while the test runs, in order."""
    return record_decrypts(world, monkeypatch)


def _request_record(world: World, before: int) -> dict[str, Any]:
    """The one audit entry a request wrote."""
    entries = world.rt._backend.audit.entries(after_seq=before - 1, limit=10)
    assert len(entries) == 1
    record: dict[str, Any] = entries[0].record
    return record


def _fields_of(record: dict[str, Any], action: str) -> list[list[str]]:
    """The fields each step of `action` lists, in a one-step or a merged entry."""
    if "operations" not in record:
        return [record["fields"]] if record["action"] == action else []
    return [op.get("fields", []) for op in record["operations"] if op["action"] == action]


def test_a_name_only_query_decrypts_the_name_only(api: Api, world: World,
                                                  opened: list[str]) -> None:
    cid = world.customers["granted"]
    before = world.rt._backend.audit.size()
    data = api.data("query($id: ID!) { customer(id: $id) { name } }",
                     key=world.keys["app"], purpose="service", variables={"id": cid})
    assert data == {"customer": {"name": world.plaintext[cid]["name"]}}
    assert opened == ["name"]
    record = _request_record(world, before)
    assert record["action"] == "customer.read" and record["fields"] == ["name"]


def test_a_name_only_list_decrypts_one_field_per_customer(api: Api, world: World,
                                                          opened: list[str]) -> None:
    before = world.rt._backend.audit.size()
    data = api.data("{ customers(first: 30) { edges { node { name } } "
                     "pageInfo { hasNextPage } } }", key=world.keys["app"], purpose="service")
    names = [e["node"]["name"] for e in data["customers"]["edges"]]
    assert len(names) == 30 and all(names)
    assert opened == ["name"] * 30
    record = _request_record(world, before)
    assert record["action"] == "customer.list" and record["fields"] == ["name"]


def test_fragments_and_aliases_select_what_they_name(api: Api, world: World,
                                                     opened: list[str]) -> None:
    cid = world.customers["granted"]
    q = """
    query($id: ID!, $no: Boolean!) {
      who: customer(id: $id) {
        handle: name
        ...Contact
        ... on Customer { born: birthDate }
        phone @include(if: $no)
        address @skip(if: true)
        history: interactions(first: 5) { edges { node { ...Visit } } }
      }
    }
    fragment Contact on Customer { mail: email }
    fragment Visit on Interaction { via: channel note: summary }
    """
    before = world.rt._backend.audit.size()
    data = api.data(q, key=world.keys["app"], purpose="service",
                     variables={"id": cid, "no": False})
    who = data["who"]
    values = world.plaintext[cid]
    assert (who["handle"], who["mail"], who["born"]) == (
        values["name"], values["email"], values["birth_date"])
    assert "phone" not in who and "address" not in who
    visits = who["history"]["edges"]
    assert visits and all(v["node"]["note"] and v["node"]["via"] for v in visits)
    assert sorted(opened) == sorted(["name", "email", "birth_date"] + ["summary"] * len(visits))
    record = _request_record(world, before)
    assert _fields_of(record, "customer.read") == [["birth_date", "email", "name"]]
    assert _fields_of(record, "interaction.list") == [["channel", "summary"]]


def test_aliases_of_one_customer_open_each_field_once(api: Api, world: World,
                                                      opened: list[str]) -> None:
    cid, other = world.customers["granted"], world.customers["none"]
    q = """query($a: ID!, $b: ID!) {
      x: customer(id: $a) { name }  y: customer(id: $a) { phone }
      z: customer(id: $b) { email } }"""
    before = world.rt._backend.audit.size()
    data = api.data(q, key=world.keys["app"], purpose="service",
                     variables={"a": cid, "b": other})
    assert data["x"] == {"name": world.plaintext[cid]["name"]}
    assert data["y"] == {"phone": world.plaintext[cid]["phone"]}
    assert data["z"] == {"email": world.plaintext[other]["email"]}
    # Not the union over the batch: `other` has only its email opened.
    assert sorted(opened) == ["email", "name", "phone"]
    record = _request_record(world, before)
    assert sorted(_fields_of(record, "customer.read")) == [["email"], ["name", "phone"]]


@pytest.mark.parametrize(("query", "fields"), [
    ("query($id: ID!) { customer(id: $id) { id withheld { field } consents { status } "
     "products { id } interactions { edges { cursor node { id kind product { id } } } } } }",
     ["BOUGHT", "kind"]),  # the purchases edges, and the interactions' kind (not personal)
    ("{ customers(first: 10) { edges { cursor node { id } } pageInfo { endCursor } } }", []),
    ("{ customers(first: 10) { pageInfo { hasNextPage } } }", []),
])
def test_a_query_without_personal_fields_decrypts_none(api: Api, world: World, opened: list[str],
                                                       query: str, fields: list[str]) -> None:
    variables = {"id": world.customers["granted"]} if "$id" in query else None
    before = world.rt._backend.audit.size()
    api.data(query, key=world.keys["app"], purpose="service", variables=variables)
    assert opened == []
    assert _request_record(world, before)["fields"] == fields


def test_a_field_the_purpose_may_not_use_stays_withheld_when_selected(
        api: Api, world: World, opened: list[str]) -> None:
    cid = world.customers["granted"]
    q = """query($id: ID!) { customer(id: $id) { name phone birthDate
                                              withheld { field reason } } }"""
    before = world.rt._backend.audit.size()
    c = api.data(q, key=world.keys["app"], purpose="marketing.email",
                  variables={"id": cid})["customer"]
    assert c["name"] == world.plaintext[cid]["name"]
    assert c["phone"] is None and c["birthDate"] is None
    withheld = {w["field"]: w["reason"] for w in c["withheld"]}
    assert "may not use" in withheld["phone"] and "birthDate" in withheld
    assert opened == ["name"]
    assert _request_record(world, before)["fields"] == ["name"]


def test_a_lookup_by_email_opens_the_email_and_what_it_selects(
        api: Api, world: World, opened: list[str]) -> None:
    cid = world.customers["granted"]
    before = world.rt._backend.audit.size()
    data = api.data("query($e: String!) { customerByEmail(email: $e) { id name } }",
                     key=world.keys["app"], purpose="service",
                     variables={"e": world.plaintext[cid]["email"]})
    assert data["customerByEmail"] == {"id": cid, "name": world.plaintext[cid]["name"]}
    assert sorted(opened) == ["email", "name"]  # the email confirms the match
    assert _request_record(world, before)["fields"] == ["email", "name"]




@pytest.mark.parametrize("type_name", ["Customer", "Interaction"])
def test_each_field_alone_is_answered(api: Api, world: World, type_name: str) -> None:
    """Every scalar field of the type, selected alone, is opened and answered: none is
    missed by the mapping from GraphQL names to view fields."""
    from graphql import GraphQLObjectType, get_named_type, is_leaf_type

    from pacte.api import build_schema

    gql_type = build_schema()._schema.get_type(type_name)
    assert isinstance(gql_type, GraphQLObjectType)
    scalars = sorted(n for n, f in gql_type.fields.items() if is_leaf_type(get_named_type(f.type)))
    cid = world.customers["granted"]
    # What the session holds, every field opened (fields=None), under the same purpose.
    session = world.rt.operator_session("service")
    view = session.customer(cid) if type_name == "Customer" else (
        session.interactions(cid, first=1).items[0])
    assert view is not None
    held = {n for n in scalars
            if n == "id" or view.fields.get(re.sub("([A-Z])", r"_\1", n).lower()) is not None}
    assert len(held) >= 5

    def ask(selection: str) -> dict[str, Any]:
        body = selection if type_name == "Customer" else (
            f"interactions(first: 1) {{ edges {{ node {{ {selection} }} }} }}")
        c = api.data(f"query($id: ID!) {{ customer(id: $id) {{ {body} }} }}",
                     key=world.keys["app"], purpose="service", variables={"id": cid})["customer"]
        result: dict[str, Any] = c if type_name == "Customer" else (
            c["interactions"]["edges"][0]["node"])
        return result

    for name in scalars:
        assert (ask(name)[name] is not None) == (name in held), name


def test_a_selection_decided_by_a_variable_is_read_again_per_request(
        api: Api, world: World, opened: list[str]) -> None:
    # The fields a document selects are remembered per document, except where a
    # variable decides them: the same query text opens per request what it returns.
    cid = world.customers["granted"]
    q = ("query($id: ID!, $yes: Boolean!) { customer(id: $id) { name "
         "email @include(if: $yes) phone @skip(if: $yes) } }")
    for yes in (True, False, True):
        opened.clear()
        data = api.data(q, key=world.keys["app"], purpose="service",
                        variables={"id": cid, "yes": yes})
        assert set(data["customer"]) == {"name", "email" if yes else "phone"}
        assert sorted(opened) == sorted(["name", "email" if yes else "phone"])
    plain = "query($id: ID!) { customer(id: $id) { email } }"
    for _ in range(2):
        opened.clear()
        api.data(plain, key=world.keys["app"], purpose="service", variables={"id": cid})
        assert opened == ["email"]
