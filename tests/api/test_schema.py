"""The committed SDL is the contract: it must match the schema the code builds."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import pacte.api
from pacte.api import sdl
from pacte.cli import app

COMMITTED = Path(pacte.api.__file__).parent / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == sdl(), (
        "pacte/api/schema.graphql is stale: run `pacte schema > pacte/api/schema.graphql`")


def test_cli_prints_the_sdl() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")


def test_contract_names() -> None:
    text = sdl()
    for line in (
        "me: Principal!",
        "purposes: [Purpose!]!",
        "customer(id: ID!): Customer",
        "customerByEmail(email: String!): Customer",
        "customers(first: Int = 20, after: String = null): CustomerConnection!",
        "product(id: ID!): Product",
        "auditVerification: AuditVerification!",
        "withheld: [WithheldField!]!",
        "consents: [Consent!]!",
        "products: [Product!]!",
        "recommendations(first: Int = 5): [Product!]!",
        "upsertCustomer(input: CustomerInput!): Customer!",
        "recordInteraction(input: InteractionInput!): Interaction!",
        "grantConsent(customerId: ID!, purpose: String!, source: String!",
        "withdrawConsent(customerId: ID!, purpose: String!): ConsentChange!",
        "eraseCustomer(customerId: ID!): ErasureReceipt!",
        "exportCustomer(customerId: ID!): JSON!",
        "pageInfo: PageInfo!",
        "hasNextPage: Boolean!",
        # Relay, enums and what the graph holds (issue 22).
        "hasPreviousPage: Boolean!",
        "startCursor: String",
        "interface Node {",
        "type Customer implements Node {",
        "type Product implements Node {",
        "node(id: ID!): Node",
        "totalCount: Int!",
        "customerByPhone(phone: String!): Customer",
        "products(first: Int = 20, after: String = null): ProductConnection!",
        "devices: [Device!]!",
        "reviews: [Review!]!",
        "referrals: [Customer!]!",
        "telemetry: DeviceTelemetry",
        "channel: Channel!",
        "kind: InteractionKind!",
        "status: ConsentStatus!",
        "role: Role!",
        "outcome: Outcome!",
        "interactions(first: Int = 20, after: String = null, channel: Channel = null)",
    ):
        assert line in text, line
    # Purposes stay strings: they come from the policy.
    assert "purpose: String!" in text and "enum Purpose" not in text
