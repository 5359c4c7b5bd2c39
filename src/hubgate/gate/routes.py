"""Deployments bound to a host and/or a path prefix, and the matcher that finds
the one an original request goes to.

An OpenAI-compatible model server (vLLM, TGI, SGLang) serves its API at its own
``/v1/...`` paths, which name no org or deployment. A binding says which
deployment a host (``llm.acme.example``), a path prefix
(``/acme/deployments/llama/``) or both lead to, so the gate can decide without
the proxy rewriting paths. Pure: strings in, a :class:`Route` or ``None`` out.

Rules:

- every request under a bound deployment is :attr:`Action.CALL`: the upstream is
  an inference API, where listing models, tokenizing and generating are all
  calls of the deployment; administering it happens in hubgate, not there;
- host-specific bindings are tried before host-less ones, and among each the
  longest prefix first (a host bound alone covers every path on that host);
- prefixes match whole segments: ``/acme/deployments/llama/`` covers
  ``/acme/deployments/llama`` and everything under it, never ``.../llamaX/``;
- the request path obeys the forward-auth path-safety rules
  (:func:`plain_segment`): a dot segment, an encoded separator, a ``#`` or an
  over-long URI matches nothing, so the request fails closed;
- the forwarded host is compared lowercased, without its port and one trailing
  dot; one that is no DNS name matches no host binding (it can only be treated
  as no host at all, which never grants more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from hubgate.access import Action, ResourceKind
from hubgate.errors import BadRequest
from hubgate.gate.paths import MAX_URI, Route, plain_segment

__all__ = [
    "MAX_HOST",
    "MAX_PREFIX",
    "Binding",
    "RouteTable",
    "check_host",
    "check_prefix",
    "forwarded_host",
]

MAX_HOST = 253
MAX_PREFIX = 256
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r":[0-9]{1,5}\Z")
_PCHAR = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
"""A path segment's characters without percent-encoding (RFC 3986 section 3.3)."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One row of the table: the deployment ``org/name`` is reached at ``host``
    and/or under ``prefix`` (at least one is set)."""

    org: str
    name: str
    host: str | None
    prefix: str | None

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.prefix.strip("/").split("/")) if self.prefix else ()


def _path_segments(uri: str) -> tuple[str, ...] | None:
    """The decoded segments of ``uri``'s path (a trailing ``/`` dropped), or
    ``None`` if an upstream could read it as another path."""
    if not uri.startswith("/") or len(uri) > MAX_URI or "#" in uri:
        return None
    parts = [unquote(p) for p in uri.split("?", maxsplit=1)[0][1:].split("/")]
    if parts[-1] == "":
        parts.pop()
    if "" in parts or not all(map(plain_segment, parts)):
        return None
    return tuple(parts)


def forwarded_host(value: str | None) -> str | None:
    """The host a proxy says it routed by, as bindings store it, or ``None``."""
    if not value or len(value) > MAX_HOST + 7 or not value.isascii():
        return None
    host = _PORT.sub("", value.lower()).removesuffix(".")
    return host if _is_dns_name(host) else None


def _is_dns_name(host: str) -> bool:
    """Letters, digits and inner hyphens in labels of 1 to 63, two labels or more.
    Callers check ASCII first: ``str.lower`` folds some non-ASCII letters (the
    Kelvin sign) into ASCII ones."""
    labels = host.split(".")
    return len(host) <= MAX_HOST and len(labels) >= 2 and all(map(_LABEL.fullmatch, labels))


def check_host(value: str) -> str:
    """A host as bound: a DNS name of two labels or more, stored lowercased
    without a trailing dot. No port: a proxy routes by name, and the port of
    the forwarded host is ignored when matching."""
    host = value.lower().removesuffix(".")
    if not value.isascii() or not _is_dns_name(host):
        raise BadRequest(
            "The host must be a DNS name such as llm.acme.example (no port, no scheme).",
            code="invalid_host",
        )
    return host


def check_prefix(value: str) -> str:
    """A path prefix as bound: ``/`` + plain segments + ``/``, undecoded."""
    segments = value[1:-1].split("/") if len(value) > 2 else []
    valid = (
        len(value) <= MAX_PREFIX
        and value.startswith("/")
        and value.endswith("/")
        and bool(segments)
        and all(_PCHAR.fullmatch(s) and plain_segment(s) for s in segments)
    )
    if not valid:
        raise BadRequest(
            "The path prefix must start and end with '/' and hold plain segments "
            "(no '.' or '..', no %-encoding, no backslash), such as /acme/deployments/llama/.",
            code="invalid_path_prefix",
        )
    return value


_Entry = tuple[tuple[str, ...], Route]
"""A binding as matched: its prefix's segments and the route it leads to."""


class RouteTable:
    """Every binding, ordered once for matching; immutable, so one process may
    keep it between requests and swap it whole when bindings change."""

    __slots__ = ("_by_host", "_hostless")

    def __init__(self, bindings: Iterable[Binding]) -> None:
        ordered = sorted(bindings, key=lambda b: len(b.segments), reverse=True)
        by_host: dict[str, list[_Entry]] = {}
        for binding in ordered:
            if binding.host is not None:
                by_host.setdefault(binding.host, []).append(_entry(binding))
        self._by_host = {host: tuple(entries) for host, entries in by_host.items()}
        self._hostless = tuple(_entry(b) for b in ordered if b.host is None)

    def __len__(self) -> int:
        return len(self._hostless) + sum(map(len, self._by_host.values()))

    def match(self, host: str | None, uri: str) -> Route | None:
        """The bound deployment the request at ``host`` + ``uri`` goes to, if any.

        No method: whatever it is, a request to a bound deployment is a call."""
        if not self._hostless and not self._by_host:
            return None
        segments = _path_segments(uri)
        if segments is None:
            return None
        normalized = forwarded_host(host)
        candidates = self._by_host.get(normalized, ()) if normalized else ()
        for prefix, route in (*candidates, *self._hostless):
            if segments[: len(prefix)] == prefix:
                return route
        return None


def _entry(binding: Binding) -> _Entry:
    return binding.segments, Route(binding.org, ResourceKind.DEPLOYMENT, binding.name, Action.CALL)
