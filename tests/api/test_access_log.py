"""G1 for logs: a real `pacte serve` answers privacy probes, and no log line holds a value.

Personal values travel in GET query strings, variables, made-up paths and headers;
every line the server writes (uvicorn's, pacte's) is scanned for each of them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.api.conftest import make_world, personal_values

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_no_personal_value_in_any_log_of_a_real_server(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    secrets = personal_values(world)
    key = world.keys["app"]
    data = world.rt.data_dir
    world.rt.close()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pacte", "serve", "--data", str(data), "--port", str(port)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert server.stdout is not None
        for line in server.stdout:  # uvicorn says when it listens
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError("".join(lines))
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}", "X-Purpose": "service"}
        cid = world.customers["granted"]
        email = world.plaintext[cid]["email"]
        name = world.plaintext[cid]["name"]
        lookup = "query($e: String!) { customerByEmail(email: $e) { id name phone } }"
        with httpx.Client(base_url=base, headers=headers) as client:
            probes = [
                client.get("/graphql", params={
                    "query": f'{{ customerByEmail(email: "{email}") {{ name email }} }}'}),
                client.get("/graphql", params={"query": lookup,
                                               "variables": json.dumps({"e": email})}),
                client.post("/graphql", json={"query": lookup, "variables": {"e": email}}),
                # Errors: a bad variable, an unknown customer, an unauthenticated call.
                client.post("/graphql", json={"query": lookup, "variables": {"e": [name]}}),
                client.get("/graphql", params={"query": f'{{ customer(id: "{name}") {{ id }} }}'}),
                client.get("/graphql", params={"query": "{ me { name } }", "e": email},
                           headers={"Authorization": f"Bearer {email}"}),
                client.get(f"/customers/{quote(email)}"),
                client.get("/healthz", params={"who": name}),
            ]
        assert probes[0].status_code == 200 and email in probes[0].text  # it did answer
    finally:
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=60)
        lines.append(rest)
    log = "".join(lines)
    leaked = sorted(v for v in secrets | {quote(email), quote(email, safe="")} if v in log)
    assert not leaked, log
    # Every log line is one JSON object (the one plain line is the command's own
    # "serving GraphQL at ..." on stdout).
    records = [json.loads(line) for line in log.splitlines()
               if line.strip() and not line.startswith("serving GraphQL")]
    assert {"time", "level", "logger", "message"} <= records[0].keys()
    access = {(r.get("method"), r.get("route"), r.get("status")) for r in records
              if r["logger"] == "pacte.access"}
    assert ("GET", "/graphql", 200) in access and ("GET", "-", 404) in access, log
