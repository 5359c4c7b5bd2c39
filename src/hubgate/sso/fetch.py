"""Fetching IdP documents (metadata, discovery, JWKS) from URLs an admin typed.

A timeout, a size cap, https or http only, no redirects, and no private,
loopback or link-local addresses (server-side request forgery) unless
``HUBGATE_ALLOW_PRIVATE_IDP_URLS`` is set, which tests and ``demo`` do.

The host is resolved once per request: every address it resolves to is checked
(one private answer refuses the URL), and the connection goes to those addresses
only, never to a second resolution (DNS rebinding). TLS still verifies the
certificate for the host named in the URL (SNI and hostname check), and the Host
header names it.

Connections are kept alive between requests, per process, for the same scheme,
host, port and set of checked addresses only: a request reuses a connection only
when this request's own check found exactly the addresses that connection was
pinned to, so no connection outlives the check that stands for it. (A connection
per request cost the OIDC callback a TCP, and on https a TLS, handshake with the
provider each time.)
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpcore
import httpx

from hubgate.errors import BadRequest

__all__ = ["Target", "fetch", "post_form", "resolve"]

MAX_BYTES = 1024 * 1024
TIMEOUT = httpx.Timeout(5.0)
KEPT_TRANSPORTS = 32
"""Pinned transports kept per process, the least recently used closed first."""
_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=3.0)
"""Idle connections close after 3 s, before common servers' own idle timeouts
(Node's and Apache's 5 s), so a request rarely meets one the server is closing."""
_NETWORK: httpcore.NetworkBackend = httpcore.SyncBackend()
"""What opens the sockets to the pinned addresses (a recording fake in tests)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL and the addresses its host resolved to when it was checked."""

    url: str
    host: str
    addresses: tuple[str, ...]


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host once; raises ``url_invalid``,
    ``url_private`` (any answer not global, unless allowed) or ``fetch_failed``."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise BadRequest("Give an http(s) URL.", code="url_invalid") from exc
    if parsed.scheme not in ("https", "http") or not host:
        raise BadRequest("Give an http(s) URL.", code="url_invalid")
    addresses = _addresses(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    if not allow_private:
        _refuse_private(host, addresses)
    return Target(url, host, addresses)


def fetch(
    url: str, *, allow_private: bool, limit: int = MAX_BYTES, headers: dict[str, str] | None = None
) -> bytes:
    target = resolve(url, allow_private=allow_private)
    return _send("GET", target, limit, headers=headers)


def post_form(
    url: str, form: dict[str, str], *, allow_private: bool, auth: tuple[str, str] | None = None
) -> bytes:
    """A bounded form POST (token endpoints); the body is returned whatever the status."""
    target = resolve(url, allow_private=allow_private)
    return _send("POST", target, MAX_BYTES, data=form, auth=auth, accept_errors=True)


@cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~20 ms, more
    than a sign-in's own calls to the IdP."""
    return httpx.create_ssl_context()


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the checked addresses of the checked host, in order, and to
    nothing else; TLS is then started by httpcore for the host in the URL."""

    def __init__(self, target: Target) -> None:
        self._target = target

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host != self._target.host:
            raise httpcore.ConnectError(f"{host} was not checked; refused.")
        refused = httpcore.ConnectError(f"{host} has no address to connect to.")
        for address in self._target.addresses:
            try:
                return _NETWORK.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next checked address, as a resolver would
                refused = exc
        raise refused

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("Unix sockets are not fetched.")

    def sleep(self, seconds: float) -> None:
        _NETWORK.sleep(seconds)


class _PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport (request mapping, errors) over a pool whose only way
    out is :class:`_PinnedBackend`; no proxy from the environment."""

    def __init__(self, target: Target) -> None:
        super().__init__(verify=_tls(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_tls(), max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry, network_backend=_PinnedBackend(target),
        )  # fmt: skip


@dataclass
class _Kept:
    transport: _PinnedTransport
    users: int = 0
    evicted: bool = False


_Key = tuple[str, str, int | None, tuple[str, ...]]
_kept: OrderedDict[_Key, _Kept] = OrderedDict()
_kept_lock = threading.Lock()


@contextmanager
def _pinned_transport(target: Target) -> Iterator[_PinnedTransport]:
    """The kept transport pinned to exactly ``target``'s host and checked
    addresses, or a new one; an evicted one is closed once no request uses it."""
    url = httpx.URL(target.url)
    key = (url.scheme, target.host, url.port, target.addresses)
    with _kept_lock:
        kept = _kept.pop(key, None) or _Kept(_PinnedTransport(target))
        kept.users += 1
        _kept[key] = kept
        idle = _evict()
    for transport in idle:
        transport.close()
    try:
        yield kept.transport
    finally:
        with _kept_lock:
            kept.users -= 1
            done = kept.evicted and kept.users == 0
        if done:
            kept.transport.close()


def _evict() -> list[_PinnedTransport]:
    """Drop the least recently used beyond :data:`KEPT_TRANSPORTS` (lock held); the
    idle ones are returned to close, the busy ones close on release."""
    idle = []
    while len(_kept) > KEPT_TRANSPORTS:
        _, oldest = _kept.popitem(last=False)
        oldest.evicted = True
        if oldest.users == 0:
            idle.append(oldest.transport)
    return idle


_HEADERS = {"Accept": "*/*", "User-Agent": "hubgate"}


def _send(
    method: str,
    target: Target,
    limit: int,
    *,
    accept_errors: bool = False,
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> bytes:
    """The request straight to the pinned transport: no client, so no redirect is
    followed, no proxy or cookie is taken from anywhere, and none is kept."""
    request = httpx.Request(
        method, target.url, headers=_request_headers(headers, auth), data=data,
        extensions={"timeout": TIMEOUT.as_dict()},
    )  # fmt: skip
    try:
        with _pinned_transport(target) as transport:
            response = transport.handle_request(request)
            try:
                if not (accept_errors or response.is_success):
                    raise BadRequest(
                        f"Could not reach {target.url}: it answered {response.status_code}.",
                        code="fetch_failed",
                    )
                return _read_bounded(response, limit)
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise BadRequest(f"Could not reach {target.url}: {exc}", code="fetch_failed") from exc


def _request_headers(
    headers: dict[str, str] | None, auth: tuple[str, str] | None
) -> dict[str, str]:
    merged = {**_HEADERS, **(headers or {})}
    if auth is not None:
        credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        merged["Authorization"] = f"Basic {credentials}"
    return merged


def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise BadRequest("The document is larger than allowed.", code="fetch_too_large")
    return bytes(body)


def _addresses(host: str, port: int) -> tuple[str, ...]:
    """Every address ``host`` resolves to, once, in the resolver's order."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadRequest(f"Cannot resolve {host}.", code="fetch_failed") from exc
    addresses = tuple(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise BadRequest(f"Cannot resolve {host}.", code="fetch_failed")
    return addresses


def _refuse_private(host: str, addresses: tuple[str, ...]) -> None:
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise BadRequest(
                f"{host} resolves to a private or loopback address ({ip}); refused.",
                code="url_private",
            )
