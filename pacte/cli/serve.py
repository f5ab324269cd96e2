"""The GraphQL server, its schema, and the demo."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from pacte.cli._common import DataOpt, _check_port, _dir, app, fail, guarded, opened
from pacte.errors import PacteError
from pacte.runtime import Pacte

LOG_LEVELS = ("debug", "info", "warning", "error")
ROUTES = ("/graphql", "/healthz", "/metrics")
_MAX_WORKERS = 64


def _serve(rt: Pacte, *, host: str, port: int, dev: bool, max_cost: int | None = None,
           log_level: str = "info", cors_origins: Sequence[str] = ()) -> None:
    import uvicorn

    from pacte.api import Limits, create_app
    from pacte.api.access_log import AccessLog
    from pacte.api.gc_pauses import freeze_startup_heap
    from pacte.api.logs import configure_logging
    from pacte.api.server_stack import server_stack
    from pacte.console import ROUTES_LOGGED

    # One line: what follows on the terminal is the JSON-lines log.
    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql"
               + (" (development mode: introspection and GraphiQL on)" if dev else "")
               + f", the audit console at http://{host}:{port}/console")
    limits = Limits() if max_cost is None else Limits(max_cost=max_cost)
    asgi = AccessLog(create_app(rt, dev=dev, limits=limits, cors_origins=cors_origins),
                     routes=(*ROUTES, *ROUTES_LOGGED))
    # uvicorn's access log writes query strings, where GET requests carry personal
    # values: pacte's own logs method, route and status only (G1), as JSON lines.
    configure_logging(level=getattr(logging, log_level.upper()))
    freeze_startup_heap()
    stack = server_stack()
    uvicorn.run(asgi, host=host, port=port, log_level=log_level, access_log=False,
                server_header=False, proxy_headers=False, log_config=None,
                http=stack.http, loop=stack.loop)


def _serve_workers(config: dict[str, Any], *, workers: int, host: str, port: int,
                   log_level: str) -> None:
    """`--workers N`: uvicorn starts N processes, each opening its own runtime."""
    import os

    import uvicorn

    from pacte.api.logs import configure_logging
    from pacte.api.server_stack import server_stack
    from pacte.api.workers import CONFIG_ENV
    from pacte.api.workers import serve as serve_workers

    typer.echo(f"serving GraphQL at http://{host}:{port}/graphql with {workers} processes")
    os.environ[CONFIG_ENV] = json.dumps(config)
    configure_logging(level=getattr(logging, log_level.upper()))
    stack = server_stack()
    code = serve_workers(uvicorn.Config(
        "pacte.api.workers:app", factory=True, workers=workers, host=host, port=port,
        log_level=log_level, access_log=False, server_header=False, proxy_headers=False,
        log_config=None, http=stack.http, loop=stack.loop), workers=workers)
    if code:
        raise typer.Exit(code)


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
    workers: Annotated[int, typer.Option(
        "--workers", help="Server processes on this machine, sharing the port")] = 1,
    store: Annotated[str | None, typer.Option(
        "--store", help="The store, e.g. neo4j://host:7687 \\[default: $PACTE_STORE, else "
                        "the data directory's]", show_default=False)] = None,
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="Without a data directory: the policy file \\[$PACTE_POLICY]",
        show_default=False)] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", help="Without a data directory: the audit signing key "
                              "\\[$PACTE_SIGNING_KEY]", show_default=False)] = None,
    master_key: Annotated[Path | None, typer.Option(
        "--master-key", help="Without a data directory and without $PACTE_MASTER_KEY: "
                             "the key file", show_default=False)] = None,
    data: DataOpt = None,
) -> None:
    """Serve GraphQL at /graphql (Bearer key + X-Purpose), health at /healthz, and
    Prometheus figures at /metrics.

    Logs are JSON lines and never hold a personal value or a key: requests are logged
    by method, route and status only.

    With a Neo4j store made by `pacte init --store neo4j://...`, a server needs no data
    directory: give it the store, the policy and the signing key (and the KEK in
    PACTE_MASTER_KEY or --master-key); --data is then only its working directory.

    Example: pacte serve --host 127.0.0.1 --port 8000 --log-level warning --workers 2
    Example: pacte serve --store neo4j://db:7687 --policy policy.toml --signing-key signing.key
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
    if not 1 <= workers <= _MAX_WORKERS:
        fail(f"--workers must be between 1 and {_MAX_WORKERS}", code=2)
    with _opened_to_serve(data, store=store, policy=policy, signing_key=signing_key,
                          master_key=master_key) as rt:
        if workers == 1:
            _serve(rt, host=host, port=port, dev=dev, max_cost=max_cost,
                   log_level=log_level.lower(), cors_origins=origins)
            return
        # Opened once here, so that a wrong key or path is one line before any worker
        # starts; each worker then opens its own.
        config = {"data": str(rt.data_dir), "store": store, "dev": dev, "max_cost": max_cost,
                  "cors_origins": origins, "log_level": log_level.lower(),
                  "attach": _attaches(data, policy=policy, signing_key=signing_key),
                  "policy": str(rt.policy_file), "signing_key": str(rt.signing_key_file),
                  "master_key": None if master_key is None else str(master_key)}
    _serve_workers(config, workers=workers, host=host, port=port, log_level=log_level.lower())


@contextmanager
def _opened_to_serve(data: Path | None, *, store: str | None, policy: Path | None,
                     signing_key: Path | None, master_key: Path | None) -> Iterator[Pacte]:
    """The data directory if there is one, else the Neo4j store attached (docs/scale-out.md)."""
    import os

    path = _dir(data)
    policy = policy or _env_path("PACTE_POLICY")
    signing_key = signing_key or _env_path("PACTE_SIGNING_KEY")
    if not _attaches(data, policy=policy, signing_key=signing_key):
        if master_key is not None:
            fail("--master-key is for a server without a data directory", code=2)
        try:
            with Pacte.open(path, store_uri=store) as rt:
                yield rt
        except PacteError as exc:
            fail(str(exc))
        return
    uri = store or os.environ.get("PACTE_STORE")
    if uri is None or policy is None or signing_key is None:
        fail("a server without a data directory needs --store, --policy and --signing-key",
             code=2)
    try:
        with Pacte.attach(uri, policy_file=policy, signing_key_file=signing_key,
                          master_key_file=master_key, work_dir=path) as rt:
            yield rt
    except PacteError as exc:
        fail(str(exc))


def _attaches(data: Path | None, *, policy: Path | None, signing_key: Path | None) -> bool:
    """Whether `serve` attaches to a store rather than opening a data directory."""
    given = policy or _env_path("PACTE_POLICY") or signing_key or _env_path("PACTE_SIGNING_KEY")
    return given is not None and not (_dir(data) / "policy.toml").exists()


def _env_path(name: str) -> Path | None:
    import os

    value = os.environ.get(name)
    return Path(value) if value else None


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
