"""The API benchmark's baseline (bench/bench_api.py) must answer what the real app answers.

Its benchmark-only session stands in for `Session` behind the same app; when the app
starts calling a session method the stand-in lacks, the benchmark can only fail with
an internal error. This keeps the two in step (it happened twice).
"""

from __future__ import annotations

from typing import Any

from bench.bench_api import QUERY_360, _BareRuntime
from pacte.api import create_app
from tests.helpers import World

from .conftest import Api


def _shape(value: Any) -> Any:
    """The keys and list lengths of a response, without its values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


def test_the_bench_baseline_answers_the_customer_360_query_with_the_same_shape(
        world: World, api: Api) -> None:
    key = world.keys["app"]
    customer = world.customers["granted"]
    real = api.data(QUERY_360, key=key, purpose="service", variables={"id": customer})
    bare_api = Api(create_app(_BareRuntime(world.rt)))  # type: ignore[arg-type]
    try:
        bare = bare_api.data(QUERY_360, key=key, purpose="service", variables={"id": customer})
    finally:
        bare_api.close()
    assert real["customer"] is not None and real["customer"]["interactions"]["edges"]
    assert _shape(bare) == _shape(real)
