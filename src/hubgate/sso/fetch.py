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

The requests go out through the standard library's :mod:`http.client`, which
follows no redirect and takes no proxy or cookie from anywhere; httpx's client,
transport and connection pool over the same pinned sockets cost the callback's
token request three times the CPU, and wrote the form in a second TCP segment.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from urllib.parse import urlencode

import httpx

from hubgate.errors import BadRequest

__all__ = [
    "Fetched",
    "Target",
    "checked_addresses",
    "fetch",
    "fetch_if_changed",
    "form_post",
    "post",
    "post_form",
    "resolve",
]

MAX_BYTES = 1024 * 1024
TIMEOUT = 5.0
"""Seconds for connecting, and for each read or write after it."""
KEPT_HOSTS = 32
"""Pinned hosts whose idle connections are kept per process, the least recently used
dropped first."""
KEPT_PER_HOST = 8
IDLE_SECONDS = 3.0
"""Idle connections close after 3 s, before common servers' own idle timeouts
(Node's and Apache's 5 s), so a request rarely meets one the server is closing."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL and the addresses its host resolved to when it was checked, with what
    a request line needs of the URL (parsed once, by the check)."""

    url: str
    host: str
    addresses: tuple[str, ...]
    scheme: str
    port: int
    path: str
    """The request target: the URL's path and query."""


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check ``url`` and resolve its host once; raises ``url_invalid``,
    ``url_private`` (any answer not global, unless allowed) or ``fetch_failed``."""
    scheme, host, port, path = _parsed(url)
    addresses = _addresses(host, port)
    if not allow_private:
        _refuse_private(host, addresses)
    return Target(url, host, addresses, scheme, port, path)


@lru_cache(maxsize=256)
def _parsed(url: str) -> tuple[str, str, int, str]:
    """The scheme, host, port and request target of an http(s) URL. Kept per URL:
    a connection's token endpoint is parsed once, not at every sign-in; its host
    is still resolved and checked at every request."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        path = parsed.raw_path.decode("ascii")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise BadRequest("Give an http(s) URL.", code="url_invalid") from exc
    if parsed.scheme not in ("https", "http") or not host:
        raise BadRequest("Give an http(s) URL.", code="url_invalid")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, host, port, path or "/"


def checked_addresses(host: str, port: int, *, allow_private: bool) -> tuple[str, ...]:
    """The addresses ``host`` resolves to, once, each checked as :func:`resolve`
    checks a URL's (for peers that are not HTTP, such as a syslog server)."""
    addresses = _addresses(host, port)
    if not allow_private:
        _refuse_private(host, addresses)
    return addresses


def post(target: Target, body: bytes, headers: dict[str, str], *, limit: int = MAX_BYTES) -> bytes:
    """A bounded POST of ``body`` to an already checked ``target``; a non-2xx
    answer fails with ``fetch_failed``."""
    return _send("POST", target, limit, headers=headers, body=body)


def fetch(
    url: str, *, allow_private: bool, limit: int = MAX_BYTES, headers: dict[str, str] | None = None
) -> bytes:
    target = resolve(url, allow_private=allow_private)
    return _send("GET", target, limit, headers=headers)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A document and the validators its server gave for the next conditional read."""

    body: bytes
    etag: str | None
    last_modified: str | None


def fetch_if_changed(
    url: str, *, allow_private: bool, etag: str | None, last_modified: str | None
) -> Fetched | None:
    """A GET with ``If-None-Match`` / ``If-Modified-Since`` (RFC 9110 §13.1.2,
    §13.1.3); ``None`` when the server answers 304 Not Modified (§15.4.5)."""
    target = resolve(url, allow_private=allow_private)
    headers = {"If-None-Match": etag} if etag else {}
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    status, validators, body = _exchange(
        "GET", target, MAX_BYTES, headers=headers, not_modified=True
    )
    if status == 304:
        return None
    return Fetched(body, *validators)


def post_form(
    url: str,
    form: dict[str, str],
    *,
    allow_private: bool,
    auth: tuple[str, str] | None = None,
    accept: str = "*/*",
) -> bytes:
    """A bounded form POST (token endpoints); the body is returned whatever the status."""
    target = resolve(url, allow_private=allow_private)
    headers, body = form_post(form, accept, auth)
    return _send("POST", target, MAX_BYTES, headers=headers, body=body, errors=True)


def form_post(
    form: dict[str, str], accept: str, auth: tuple[str, str] | None
) -> tuple[dict[str, str], bytes]:
    """The headers and body of a form POST, with HTTP Basic credentials if given."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept}
    return _request_headers(headers, auth), urlencode(form).encode("ascii")


@cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~20 ms, more
    than a sign-in's own calls to the IdP."""
    return httpx.create_ssl_context()


class _Network:
    """What opens the sockets to the pinned addresses and starts TLS on them (a
    recording fake in tests)."""

    def connect_tcp(self, address: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((address, port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def start_tls(
        self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str
    ) -> socket.socket:
        return context.wrap_socket(sock, server_hostname=server_hostname)


_NETWORK = _Network()


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to the checked addresses of the checked host, in
    order, and to nothing else; TLS (verified) for the host in the URL."""

    def __init__(self, target: Target) -> None:
        super().__init__(target.host, target.port, timeout=TIMEOUT)
        self.target = target
        # The Host header leaves out the scheme's own port.
        self.default_port = 443 if target.scheme == "https" else 80
        self.idle_since = 0.0
        self.reusable = False
        """Whether the last exchange left it clean: its whole answer read, no
        ``Connection: close``."""

    def connect(self) -> None:
        sock = self._connect_checked()
        if self.target.scheme == "https":
            try:
                sock = _NETWORK.start_tls(sock, _tls(), self.host)
            except OSError:
                sock.close()
                raise
        self.sock = sock

    def _connect_checked(self) -> socket.socket:
        refused: OSError = ConnectionError(f"{self.host} has no address to connect to.")
        for address in self.target.addresses:
            try:
                return _NETWORK.connect_tcp(address, self.port, TIMEOUT)
            except OSError as exc:  # the next checked address, as a resolver would
                refused = exc
        raise refused

    def usable(self, now: float) -> bool:
        """Kept, not idle too long, and not closed (or written to) by the server."""
        if self.sock is None or now - self.idle_since > IDLE_SECONDS:
            return False
        poll = select.poll()
        poll.register(self.sock, select.POLLIN)
        return not poll.poll(0)


_Key = tuple[str, str, int, tuple[str, ...]]


@dataclass
class _Idle:
    connections: list[_PinnedConnection] = field(default_factory=list)


_kept: OrderedDict[_Key, _Idle] = OrderedDict()
_kept_lock = threading.Lock()


def _key(target: Target) -> _Key:
    return (target.scheme, target.host, target.port, target.addresses)


def _take(target: Target) -> _PinnedConnection:
    """An idle connection pinned to exactly ``target``'s host and checked addresses
    that is still usable, or a new one (it connects on its first request)."""
    now, stale = time.monotonic(), []
    found = None
    with _kept_lock:
        idle = _kept.get(_key(target))
        while idle is not None and idle.connections and found is None:
            candidate = idle.connections.pop()
            if candidate.usable(now):
                found = candidate
            else:
                stale.append(candidate)
    for connection in stale:
        connection.close()
    return found or _PinnedConnection(target)


def _keep(connection: _PinnedConnection) -> None:
    """Back among the idle ones of its target; beyond the bounds, closed."""
    connection.idle_since = time.monotonic()
    closing = []
    with _kept_lock:
        key = _key(connection.target)
        idle = _kept.pop(key, None) or _Idle()
        _kept[key] = idle
        idle.connections.append(connection)
        if len(idle.connections) > KEPT_PER_HOST:
            closing.append(idle.connections.pop(0))
        while len(_kept) > KEPT_HOSTS:
            closing.extend(_kept.popitem(last=False)[1].connections)
    for old in closing:
        old.close()


@contextmanager
def _connection(target: Target) -> Iterator[_PinnedConnection]:
    """A pinned connection for one exchange, kept afterwards only when the exchange
    left it clean."""
    connection = _take(target)
    connection.reusable = False
    try:
        yield connection
    finally:
        if connection.reusable and connection.sock is not None:
            _keep(connection)
        else:
            connection.close()


_HEADERS = {"Accept": "*/*", "User-Agent": "hubgate"}


def _send(
    method: str,
    target: Target,
    limit: int,
    *,
    errors: bool = False,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    auth: tuple[str, str] | None = None,
) -> bytes:
    """The request on a pinned connection; the answer's body, bounded. A non-2xx
    answer fails unless ``errors`` (a token endpoint's errors are JSON to read)."""
    return _exchange(method, target, limit, errors=errors, headers=headers, body=body, auth=auth)[2]


def _exchange(
    method: str,
    target: Target,
    limit: int,
    *,
    errors: bool = False,
    not_modified: bool = False,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    auth: tuple[str, str] | None = None,
) -> tuple[int, tuple[str | None, str | None], bytes]:
    """:func:`_send`, also answering the status and the ETag and Last-Modified
    validators; with ``not_modified`` a 304 is an answer, not a failure."""
    try:
        with _connection(target) as connection:
            connection.request(method, target.path, body, _request_headers(headers, auth))
            response = connection.getresponse()
            ok = errors or 200 <= response.status < 300 or (not_modified and response.status == 304)
            if not ok:
                response.close()  # its socket goes with the connection, not with the GC
                raise BadRequest(
                    f"Could not reach {target.url}: it answered {response.status}.",
                    code="fetch_failed",
                )
            body = _read_bounded(response, limit)
            connection.reusable = response.isclosed() and not response.will_close
            validators = (_validator(response, "ETag"), _validator(response, "Last-Modified"))
            return response.status, validators, body
    except (OSError, http.client.HTTPException) as exc:
        raise BadRequest(f"Could not reach {target.url}: {exc}", code="fetch_failed") from exc


def _validator(response: http.client.HTTPResponse, name: str) -> str | None:
    """A validator header as given, unless it is too long or not printable ASCII to
    send back (a hostile server's value must not become a header injection)."""
    value = response.getheader(name)
    if value is None or len(value) > 200 or not (value.isascii() and value.isprintable()):
        return None
    return value


def _request_headers(
    headers: dict[str, str] | None, auth: tuple[str, str] | None
) -> dict[str, str]:
    merged = {**_HEADERS, **(headers or {})}
    if auth is not None:
        credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        merged["Authorization"] = f"Basic {credentials}"
    return merged


def _read_bounded(response: http.client.HTTPResponse, limit: int) -> bytes:
    body = response.read(limit + 1)
    if len(body) > limit:
        raise BadRequest("The document is larger than allowed.", code="fetch_too_large")
    return body


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
