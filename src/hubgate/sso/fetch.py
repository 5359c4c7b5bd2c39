"""Fetching IdP documents (metadata, discovery, JWKS) from URLs an admin typed.

A timeout, a size cap, https or http only, and no private, loopback or
link-local addresses (server-side request forgery) unless
``HUBGATE_ALLOW_PRIVATE_IDP_URLS`` is set, which tests and ``demo`` do.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import httpx

from hubgate.errors import BadRequest

__all__ = ["check_url", "fetch", "post_form"]

MAX_BYTES = 1024 * 1024
TIMEOUT = httpx.Timeout(5.0)


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequest("Give an http(s) URL.", code="url_invalid")
    if not allow_private:
        _refuse_private(parts.hostname)


def fetch(
    url: str, *, allow_private: bool, limit: int = MAX_BYTES, headers: dict[str, str] | None = None
) -> bytes:
    check_url(url, allow_private=allow_private)
    return _send("GET", url, limit, headers=headers)


def post_form(
    url: str, form: dict[str, str], *, allow_private: bool, auth: tuple[str, str] | None = None
) -> bytes:
    """A bounded form POST (token endpoints); the body is returned whatever the status."""
    check_url(url, allow_private=allow_private)
    return _send("POST", url, MAX_BYTES, data=form, auth=auth, accept_errors=True)


@cache
def _tls() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA bundle costs ~20 ms, more
    than a sign-in's own calls to the IdP. Each call still gets its own client (no
    connection is kept between requests, so each URL's check stands for its socket)."""
    return httpx.create_ssl_context()


def _send(
    method: str, url: str, limit: int, *, accept_errors: bool = False, **options: Any
) -> bytes:
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=False, verify=_tls()) as client,
            client.stream(method, url, **options) as response,
        ):
            if not accept_errors:
                response.raise_for_status()
            return _read_bounded(response, limit)
    except httpx.HTTPError as exc:
        raise BadRequest(f"Could not reach {url}: {exc}", code="fetch_failed") from exc


def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise BadRequest("The document is larger than allowed.", code="fetch_too_large")
    return bytes(body)


def _refuse_private(hostname: str) -> None:
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
    except socket.gaierror as exc:
        raise BadRequest(f"Cannot resolve {hostname}.", code="fetch_failed") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise BadRequest(
                f"{hostname} resolves to a private or loopback address ({ip}); refused.",
                code="url_private",
            )
