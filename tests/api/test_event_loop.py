"""A slow request does not hold the event loop: other requests are answered meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from pacte.api import create_app
from pacte.graph.session import Session
from tests.helpers import World

# Only a guard against hanging the suite when the loop is blocked; nothing is timed.
GIVE_UP = 30


def test_healthz_answers_while_a_request_is_blocked(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    returned: list[bool] = []
    purposes = Session.purposes

    def blocked(self: Session) -> Any:
        entered.set()
        release.wait(GIVE_UP)  # the test releases it once /healthz has answered
        returned.append(True)
        return purposes(self)

    monkeypatch.setattr(Session, "purposes", blocked)
    app = create_app(world.rt)

    async def scenario() -> tuple[int, bool, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://pacte.test") as client:
            slow = asyncio.create_task(client.post(
                "/graphql", json={"query": "{ purposes { id } }"},
                headers={"Authorization": f"Bearer {world.keys['app']}",
                         "X-Purpose": "service"}))
            while not entered.is_set() and not slow.done():
                await asyncio.sleep(0)  # let the slow request start
            health = await client.get("/healthz")
            slow_was_blocked = not returned
            release.set()
            return health.status_code, slow_was_blocked, (await slow).status_code

    health, slow_was_blocked, slow = asyncio.run(scenario())
    assert health == 200
    assert slow_was_blocked, "/healthz waited for the slow request"
    assert slow == 200
