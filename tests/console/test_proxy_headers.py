"""Behind a reverse proxy that ends TLS: `X-Forwarded-Proto` decides whether the pages'
cookies are Secure, and `X-Forwarded-For` which address the sign-in limit counts, only
when the request comes from a proxy named in PACTE_TRUSTED_PROXIES. From anyone else
both headers are ignored (httpx's ASGI client connects from 127.0.0.1)."""

from __future__ import annotations

import pytest

from pacte.api import create_app
from pacte.errors import ConfigError
from tests.api.conftest import Api
from tests.console.test_pages_safety import csrf
from tests.helpers import World

HTTPS = {"X-Forwarded-Proto": "https"}


def _secure(api: Api, headers: dict[str, str] | list[tuple[str, str]]) -> bool:
    cookie = api.request("GET", "/console", headers=headers).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return "secure" in cookie


def test_a_forwarded_proto_from_anyone_is_ignored(api: Api) -> None:
    assert not _secure(api, HTTPS)


@pytest.mark.parametrize(("trusted", "proto", "secure"), [
    ("127.0.0.1", "https", True),
    ("127.0.0.0/8, 10.0.0.0/8", "https", True),
    ("127.0.0.1", "http", False),
    ("127.0.0.1", "http, https", True),  # the nearest proxy's value is the last one
    ("127.0.0.1", "https, http", False),
    ("10.0.0.0/8", "https", False),  # not our peer
])
def test_a_forwarded_proto_from_a_trusted_proxy_decides(
        api: Api, monkeypatch: pytest.MonkeyPatch, trusted: str, proto: str,
        secure: bool) -> None:
    monkeypatch.setenv("PACTE_TRUSTED_PROXIES", trusted)
    assert _secure(api, {"X-Forwarded-Proto": proto}) is secure


@pytest.mark.parametrize(("lines", "secure"), [
    (["https", "http"], False),  # the client's forged line first, the proxy's last
    (["http", "https"], True),
    (["http", "http, https"], True),
])
def test_a_forwarded_proto_line_of_the_client_does_not_decide(
        api: Api, monkeypatch: pytest.MonkeyPatch, lines: list[str], secure: bool) -> None:
    # A proxy may add a header line of its own rather than append to the client's.
    monkeypatch.setenv("PACTE_TRUSTED_PROXIES", "127.0.0.1")
    assert _secure(api, [("X-Forwarded-Proto", v) for v in lines]) is secure


def _sign_in(api: Api, key: str, token: str, *via: str) -> int:
    return api.request("POST", "/console/sign-in", data={"csrf": token, "key": key},
                       headers=[("X-Forwarded-For", v) for v in via]).status_code


def test_the_sign_in_limit_counts_the_forwarded_address_of_a_trusted_proxy(
        api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTE_TRUSTED_PROXIES", "127.0.0.1")
    token = csrf(api)
    # What the client put before the proxy's own hop could be forged: the proxy's
    # (last) value is the one counted.
    for n in range(5):
        assert _sign_in(api, "wrong", token, f"198.51.100.{n}, 203.0.113.5") == 401
    assert _sign_in(api, world.keys["auditor"], token, "203.0.113.5") == 429
    # Another browser behind the same proxy is not locked out.
    assert _sign_in(api, world.keys["auditor"], token, "203.0.113.6") == 303


def test_a_forwarded_address_line_of_the_client_is_not_counted(
        api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # HAProxy's `option forwardfor` adds its own X-Forwarded-For line after the client's:
    # a guesser naming a new address in its own line each try is still counted as itself.
    monkeypatch.setenv("PACTE_TRUSTED_PROXIES", "127.0.0.1")
    token = csrf(api)
    for n in range(5):
        assert _sign_in(api, "wrong", token, f"198.51.100.{n}", "203.0.113.5") == 401
    assert _sign_in(api, world.keys["auditor"], token, "198.51.100.99", "203.0.113.5") == 429
    assert _sign_in(api, world.keys["auditor"], token, "203.0.113.6") == 303


def test_a_forwarded_address_from_anyone_is_ignored(api: Api, world: World) -> None:
    # Otherwise a guesser would name a new address with each try.
    token = csrf(api)
    for n in range(5):
        assert _sign_in(api, "wrong", token, f"203.0.113.{n}") == 401
    assert _sign_in(api, world.keys["auditor"], token, "203.0.113.99") == 429


def test_a_bad_trusted_proxy_fails_the_start(world: World,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTE_TRUSTED_PROXIES", "127.0.0.1, proxy.example")
    with pytest.raises(ConfigError, match=r"'proxy\.example' is not an address"):
        create_app(world.rt)
