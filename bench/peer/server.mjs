// BENCHMARK ONLY: the peer pacte is compared with (bench/bench_peer.py).
// @neo4j/graphql on Apollo Server, serving the customer-360 from typed labels in
// plaintext, with no encryption, consent or audit. Listens on 127.0.0.1:$PORT and
// prints "READY <port>" once it serves. Times are fixed-width ISO-8601 UTC strings
// (sortable as text): @neo4j/graphql's DateTime needs the APOC plugin, which the test
// server does not have; text spares the peer a conversion, so it favours the peer.
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { Neo4jGraphQL } from "@neo4j/graphql";
import neo4j from "neo4j-driver";

const typeDefs = `#graphql
  type Customer @node {
    id: ID!
    name: String
    email: String
    phone: String
    address: String
    consents: [Consent!]! @relationship(type: "CONSENTED", direction: OUT)
    interactions: [Interaction!]! @relationship(type: "HAD", direction: OUT)
    products: [Product!]! @relationship(type: "BOUGHT", direction: OUT)
  }
  type Interaction @node {
    id: ID!
    channel: String
    kind: String
    occurredAt: String
    summary: String
    product: [Product!]! @relationship(type: "ABOUT", direction: OUT)
  }
  type Product @node {
    id: ID!
    name: String
    category: String
    price: Float
  }
  type Consent @node {
    purpose: String
    status: String
    at: String
    until: String
    source: String
  }
`;

const driver = neo4j.driver(process.env.NEO4J_URI);
const neoSchema = new Neo4jGraphQL({ typeDefs, driver });
const server = new ApolloServer({ schema: await neoSchema.getSchema() });
const port = Number(process.env.PORT);
await startStandaloneServer(server, { listen: { host: "127.0.0.1", port } });
console.log(`READY ${port}`);
