"""Where a stream may point, and the sending.

A webhook is ``https://``; ``http://`` only to a loopback host and only while
``HUBGATE_ALLOW_PRIVATE_IDP_URLS`` is set (tests, ``demo``). A syslog server is
``tcp://host:port`` or ``tls://host:port``. At every delivery the host is
resolved once and each address checked (:mod:`hubgate.sso.fetch`): an org's
stream may not reach a private, loopback or link-local address unless that
setting allows it, and the connection goes to the checked addresses only. The
operator's own streams (from settings) may reach the operator's network.

Syslog over TCP has no acknowledgement (RFC 6587): a batch counts as delivered
once written to a connection that closed cleanly.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import SplitResult, urlsplit

from hubgate.errors import BadRequest
from hubgate.sso import fetch
from hubgate.streams.formats import SIGNATURE_HEADER, frame

__all__ = ["SyslogServer", "check_url", "post_event", "send_syslog", "syslog_server"]

MAX_URL = 500
ANSWER_LIMIT = 4096
"""Bytes of a webhook's answer read; only its status counts, and a longer body is
not read further."""
TIMEOUT = 5.0
WEBHOOK_SCHEMES = ("https", "http")
SYSLOG_SCHEMES = ("tcp", "tls")


@dataclass(frozen=True, slots=True)
class SyslogServer:
    host: str
    port: int
    tls: bool


def check_url(kind: str, url: str, *, allow_private: bool) -> str:
    """The URL if it may be a ``kind`` stream's destination, judged without any
    network call (the addresses are checked at each delivery); else ``url_invalid``
    or ``url_insecure``."""
    if len(url) > MAX_URL or any(not c.isprintable() or c.isspace() for c in url):
        raise BadRequest("Give a URL of at most 500 characters.", code="url_invalid")
    if kind == "syslog":
        syslog_server(url)
        return url
    parts = _split(url, WEBHOOK_SCHEMES)
    if parts.scheme == "http" and not (allow_private and _loopback(parts.hostname or "")):
        raise BadRequest("A webhook must be an https:// URL.", code="url_insecure")
    return url


def syslog_server(url: str) -> SyslogServer:
    """``tcp://host:port`` or ``tls://host:port`` (no path)."""
    parts = _split(url, SYSLOG_SCHEMES)
    if parts.port is None or parts.path not in ("", "/") or parts.query:
        raise BadRequest(
            "Give a syslog URL as tcp://host:port or tls://host:port.", code="url_invalid"
        )
    return SyslogServer(parts.hostname or "", parts.port, parts.scheme == "tls")


def _split(url: str, schemes: Sequence[str]) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise BadRequest("The URL cannot be read.", code="url_invalid") from exc
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        listed = " or ".join(f"{s}://" for s in schemes)
        raise BadRequest(f"Give a {listed} URL without user or password.", code="url_invalid")
    return parts


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post_event(
    url: str, body: bytes, signature: str, event_id: int, *, allow_private: bool
) -> None:
    """POST one event; any failure (refused address, no answer, non-2xx) raises
    :class:`~hubgate.errors.BadRequest` with a message for the stream's last error."""
    target = fetch.resolve(url, allow_private=allow_private)
    if target.scheme == "http" and not all(_loopback(a) for a in target.addresses):
        raise BadRequest("A webhook must be an https:// URL.", code="url_insecure")
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature,
        "X-Hubgate-Event-Id": str(event_id),
    }
    try:
        fetch.post(target, body, headers, limit=ANSWER_LIMIT)
    except BadRequest as exc:
        if exc.code != "fetch_too_large":  # a 2xx with a long body took the event all the same
            raise


def send_syslog(
    server: SyslogServer, messages: Sequence[bytes], *, allow_private: bool, ca_file: str | None
) -> None:
    """Write ``messages`` in order on one connection to a checked address; raises
    :class:`OSError` or :class:`~hubgate.errors.BadRequest`."""
    addresses = fetch.checked_addresses(server.host, server.port, allow_private=allow_private)
    with _connect(addresses, server.port) as raw:
        sock = _tls(ca_file).wrap_socket(raw, server_hostname=server.host) if server.tls else raw
        with sock:
            sock.sendall(b"".join(frame(message) for message in messages))


def _connect(addresses: Sequence[str], port: int) -> socket.socket:
    refused: OSError = ConnectionError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), TIMEOUT)
        except OSError as exc:  # the next checked address, as a resolver would
            refused = exc
    raise refused


@cache
def _tls(ca_file: str | None) -> ssl.SSLContext:
    """A verifying context: the system's CAs, or ``HUBGATE_AUDIT_SYSLOG_CA_FILE``'s."""
    return ssl.create_default_context(cafile=ca_file)
