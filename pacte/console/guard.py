"""The pages' safety: headers, cookies, CSRF tokens, form bodies and sign-in rate limits.

- Every page is sent with a Content-Security-Policy that allows no script at all and
  nothing from elsewhere, `no-store`, `nosniff`, no referrer and no framing.
- Cookies are HttpOnly and SameSite=Strict, and Secure when the request came over https:
  the connection's own scheme, or behind a reverse proxy that ends TLS, the
  `X-Forwarded-Proto` it sets, honoured only from the proxies named in
  `PACTE_TRUSTED_PROXIES` (addresses or networks, comma-separated); from those, the
  client address the sign-in limit counts is read from `X-Forwarded-For` too. From any
  other peer both headers are ignored: anyone can send them. Every line of each header
  is read, in order: a proxy may add a line of its own after the client's.
- Every form carries a CSRF token: the keyed digest of a random cookie of the browser's
  (double submit, bound with the console key), checked on every POST.
- Form bodies are read with a size limit and parsed as urlencoded text only.
- Failed sign-ins are counted per client address; past the limit, sign-in is refused
  for the rest of the window, whatever the key.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from pacte.clock import Clock
from pacte.console.seal import Sealer
from pacte.errors import ConfigError, InputError, TooManyAttempts

__all__ = ["CSP", "CSRF_COOKIE", "DOCUMENT_CSP", "HEADERS", "TRUSTED_PROXIES_ENV", "Csrf",
           "SignInLimiter", "clear_cookie", "client_address", "over_https", "read_form",
           "set_cookie", "trusted_proxies"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
# Printable documents carry their own styles, and still no script and nothing external.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY"}
CSRF_COOKIE = "pacte_csrf"
MAX_FORM_BYTES = 16 * 1024
TRUSTED_PROXIES_ENV = "PACTE_TRUSTED_PROXIES"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies() -> tuple[Network, ...]:
    """The networks PACTE_TRUSTED_PROXIES names; ConfigError naming a bad one."""
    return _networks(os.environ.get(TRUSTED_PROXIES_ENV, ""))


@functools.lru_cache(maxsize=4)  # read per request: parsed once per value
def _networks(spec: str) -> tuple[Network, ...]:
    out: list[Network] = []
    for item in (i.strip() for i in spec.split(",")):
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{TRUSTED_PROXIES_ENV}: {item!r} is not an address or "
                                  "network") from None
    return tuple(out)


def _trusted(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted_proxies())


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


def over_https(request: Request) -> bool:
    """Whether the browser reached us over https: the connection's scheme, or the
    `X-Forwarded-Proto` a trusted proxy set (its last value: the nearest proxy's)."""
    if request.url.scheme == "https":
        return True
    proto = _forwarded(request, "x-forwarded-proto")
    return bool(proto) and _trusted(_peer(request)) and proto[-1].lower() == "https"


def client_address(request: Request) -> str:
    """The browser's address: the peer's, or behind trusted proxies the nearest address
    in `X-Forwarded-For` that is not one of them (those before it could be forged)."""
    peer = _peer(request) or "-"
    if not _trusted(peer):
        return peer
    for hop in reversed(_forwarded(request, "x-forwarded-for")):
        if not _trusted(hop):
            return hop
    return peer


def _forwarded(request: Request, name: str) -> list[str]:
    """The values of every `name` header line, in order. A proxy may add a line of its
    own rather than append to the client's (HAProxy's `option forwardfor`): reading
    the first line only would take the client's, which anyone can forge."""
    values = ",".join(request.headers.getlist(name)).split(",")
    return [v.strip() for v in values if v.strip()]


def set_cookie(response: Response, request: Request, name: str, value: str, *,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="strict", secure=over_https(request))


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict",
                           secure=over_https(request))


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body (last value of each name); InputError when malformed."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InputError("send the form as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_FORM_BYTES:
            raise InputError("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                          max_num_fields=64, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError("the form is not valid") from exc
    return {k: v.strip() for k, v in pairs}


class Csrf:
    """Double-submit CSRF tokens bound to a random cookie with the console key."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def token(self, request: Request) -> tuple[str, str | None]:
        """The token for this browser's forms, and the cookie to set if it has none."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        fresh = None
        if len(cookie) != 32:
            cookie = fresh = secrets.token_hex(16)
        return self._sealer.mac("csrf", cookie), fresh

    def check(self, request: Request, form: Mapping[str, str]) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = form.get("csrf", "")
        return len(cookie) == 32 and hmac.compare_digest(
            given.encode("utf-8", "surrogatepass"),
            self._sealer.mac("csrf", cookie).encode("ascii"))


class SignInLimiter:
    """At most `failures` failed sign-ins per address in any `window`.

    In memory, per process: a restart forgets the counts, which a slow guesser cannot
    use (keys are 256-bit); it keeps a fast one from filling the trail. At most
    `addresses` addresses are tracked, the least recently failed dropped first.
    """

    def __init__(self, *, now: Clock, failures: int = 5, window: timedelta = timedelta(
            minutes=5), addresses: int = 10_000) -> None:
        self._now = now
        self._failures = failures
        self._window = window
        self._addresses = addresses
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: datetime) -> deque[datetime]:
        times = self._seen.get(address) or deque()
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def check(self, address: str) -> None:
        """TooManyAttempts while the address is over the limit."""
        with self._lock:
            if len(self._recent(address, self._now())) >= self._failures:
                raise TooManyAttempts("too many failed sign-ins; wait a few minutes")

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._now()
            times = self._recent(address, now)
            times.append(now)
            self._seen[address] = times
            self._seen.move_to_end(address)
            while len(self._seen) > self._addresses:
                self._seen.popitem(last=False)
