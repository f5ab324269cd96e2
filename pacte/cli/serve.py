"""The GraphQL server, its schema, and the demo."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Annotated

import typer

from pacte.cli._common import DataOpt, _check_port, _dir, app, fail, guarded, opened
from pacte.runtime import Pacte

LOG_LEVELS = ("debug", "info", "warning", "error")


def _serve(rt: Pacte, *, host: str, port: int, dev: bool, max_cost: int | None = None,
           log_level: str = "info", cors_origins: Sequence[str] = ()) -> None:
    import uvicorn

    from pacte.api import Limits, create_app
    from pacte.api.access_log import AccessLog

    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql"
               + (" (development mode: introspection and GraphiQL on)" if dev else ""))
    limits = Limits() if max_cost is None else Limits(max_cost=max_cost)
    asgi = AccessLog(create_app(rt, dev=dev, limits=limits, cors_origins=cors_origins),
                     routes=("/graphql", "/healthz"))
    # uvicorn's access log writes query strings, where GET requests carry personal
    # values: pacte's own logs method, route and status only (G1).
    level = getattr(logging, log_level.upper())
    logging.basicConfig(level=level, format="%(levelname)s: %(name)s: %(message)s")
    logging.getLogger("neo4j").setLevel(level if level == logging.DEBUG
                                        else max(level, logging.WARNING))
    uvicorn.run(asgi, host=host, port=port, log_level=log_level, access_log=False,
                server_header=False, proxy_headers=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    dev: Annotated[bool, typer.Option(
        "--dev", help="Introspection, field suggestions and GraphiQL (never in production)")
    ] = False,
    max_cost: Annotated[int | None, typer.Option(
        "--max-cost", help="Refuse documents that may resolve more fields than this, "
                           "counting each once per item of the pages around it \\[default: 50000]",
        show_default=False)] = None,
    log_level: Annotated[str, typer.Option(
        "--log-level", help=f"How much to log: {', '.join(LOG_LEVELS)}")] = "info",
    cors_origin: Annotated[list[str] | None, typer.Option(
        "--cors-origin", help="A web origin whose pages may call the API from a browser, "
                              "e.g. https://crm.example.com (repeat; none by default)")] = None,
    data: DataOpt = None,
) -> None:
    """Serve GraphQL at /graphql (Bearer key + X-Purpose) and health at /healthz.

    Logs never hold a personal value or a key: requests are logged by method, route
    and status only.

    Example: pacte serve --host 127.0.0.1 --port 8000 --log-level warning
    """
    _check_port(port)
    if max_cost is not None and max_cost < 1:
        fail("--max-cost must be at least 1", code=2)
    if log_level.lower() not in LOG_LEVELS:
        fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}", code=2)
    origins = cors_origin or []
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            fail(f"--cors-origin takes an origin such as https://crm.example.com, not "
                 f"{origin!r}", code=2)
    with opened(data) as rt:
        _serve(rt, host=host, port=port, dev=dev, max_cost=max_cost,
               log_level=log_level.lower(), cors_origins=origins)


@app.command("schema")
def schema_cmd() -> None:
    """Print the GraphQL schema (SDL).

    Example: pacte schema > schema.graphql
    """
    from pacte.api import sdl

    typer.echo(sdl(), nl=False)


def _curl(port: int, key: str, purpose: str, query: str) -> str:
    body = json.dumps({"query": query}).replace("'", "'\\''")
    return (f"curl -s http://127.0.0.1:{port}/graphql -H 'Authorization: Bearer {key}' "
            f"-H 'X-Purpose: {purpose}' -H 'Content-Type: application/json' -d '{body}'")


@app.command()
def demo(
    data: DataOpt = None,
    customers: Annotated[int, typer.Option("--customers", help="How many to seed")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    dev: Annotated[bool, typer.Option(
        "--dev/--no-dev", help="Introspection and GraphiQL at /graphql")] = True,
    no_serve: Annotated[bool, typer.Option(
        "--no-serve", help="Prepare and print, but do not serve")] = False,
) -> None:
    """Init (if needed), seed, demo API keys and a sample customer, sample queries, serve.

    The keys are saved in the data directory (demo-keys.json, readable by you only) and
    reused by the next run; the sample customer was created by the demo app, so its
    consents, recommendations and myDataUses show what an app's customer would see.

    Example: pacte demo --data ./pacte-demo --customers 2000 --port 8000
    """
    from pacte.demo import KEYS_FILE, prepare_demo

    if customers < 1 or customers > 10_000_000:
        fail("--customers must be between 1 and 10000000", code=2)
    _check_port(port)
    path = _dir(data)
    if not (path / "policy.toml").exists():
        guarded(lambda: Pacte.init(path).close())
        typer.echo(f"initialised {path}")
    with opened(path) as rt:
        typer.echo(f"preparing the demo ({customers} customers, seed {seed}, if the store "
                   "is empty) ...")
        world = guarded(lambda: prepare_demo(rt, customers=customers, seed=seed))
        if world.seeded is not None:
            typer.echo(f"seeded {world.seeded['customers']} customers, "
                       f"{world.seeded['interactions']} interactions")
        keys, cid = world.keys, world.sample
        typer.echo(("keys reused from " if world.reused else "keys saved to ")
                   + str(path / KEYS_FILE))
        for role, key in keys.items():
            typer.echo(f"{role:8} key: {key}")
        typer.echo(f"sample customer: {cid}")
        typer.echo("\ntry:")
        for purpose, key, query in (
            ("service", keys["app"], "{ customers(first: 3) { edges { node { id name email } } "
                                     "pageInfo { hasNextPage endCursor } } }"),
            ("service", keys["app"], f'{{ customer(id: "{cid}") {{ name email phone '
                                     "consents { purpose status } interactions(first: 5) "
                                     "{ edges { node { channel kind occurredAt summary "
                                     "product { name } } } } products { name } } }"),
            ("personalization", keys["app"], f'{{ customer(id: "{cid}") {{ name '
                                             "recommendations { name price } } }"),
            ("marketing.email", keys["app"], "{ customers(first: 3) { edges { node { id name "
                                             "phone withheld { field reason } } } } }"),
            ("self_service", keys["app"], f'{{ myDataUses(customerId: "{cid}", first: 5) '
                                          "{ edges { node { at principalName purpose action "
                                          "fields } } } }"),
            ("legal", keys["auditor"], "{ auditVerification { ok lines } }"),
        ):
            typer.echo(_curl(port, key, purpose, query))
        if not no_serve:
            typer.echo("")
            if dev:
                typer.echo(f"GraphiQL: http://{host}:{port}/graphql in a browser (send the "
                           "key as a Bearer header and X-Purpose)")
            _serve(rt, host=host, port=port, dev=dev)
