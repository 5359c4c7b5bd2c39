"""``GET /auth/check`` served ahead of the framework.

A proxy asks this before every request it forwards, so it is answered here, in
front of the routing, dependency resolution and middleware that pages and the
API need, from the per-process :class:`~hubgate.gate.cache.DecisionCache` when
nothing has changed since the answer was computed, and from the database (on a
worker thread) otherwise. Everything else goes on to the app unchanged. Each
allowed ``call`` by a token is counted in memory for its usage figures
(:mod:`hubgate.gate.usage`), cached or not.

The proxy sends the original request's path (``X-Original-URI`` or
``X-Forwarded-Uri``) and method (``X-Original-Method`` or
``X-Forwarded-Method``), the host it routed by (in the header
``HUBGATE_HOST_HEADER`` names), plus the caller's ``Authorization`` header or
cookie. A deployment bound to that host and/or a path prefix
(:mod:`hubgate.gate.routes`) takes the request first; otherwise
:mod:`hubgate.gate.paths` maps the path to a resource and action.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from anyio import to_thread
from prometheus_client import Counter
from sqlalchemy.exc import OperationalError
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate import metrics
from hubgate.access import Action
from hubgate.accounts.sessions import COOKIE
from hubgate.gate import changes, route_table
from hubgate.gate.answer import Answer, Headers, evaluate, refusal
from hubgate.gate.assertion import HEADER, Minter
from hubgate.gate.cache import MAX_AGE, DecisionCache
from hubgate.gate.paths import Route, map_request
from hubgate.gate.routes import RouteTable
from hubgate.gate.usage import UsageCounter
from hubgate.runtime import Runtime

__all__ = ["PATH", "Gate", "GateRequest"]

PATH = "/auth/check"
log = logging.getLogger("hubgate.gate")
_METHODS = frozenset({"GET", "HEAD"})
_WANTED = frozenset(
    {
        b"x-original-uri",
        b"x-forwarded-uri",
        b"x-original-method",
        b"x-forwarded-method",
        b"authorization",
        b"cookie",
    }
)
_UNMAPPED = "route_unmapped"
_AMBIGUOUS = "route_ambiguous"
_UNAVAILABLE = "database_unavailable"
# Refusals a new SSO authentication ends: the change sequence does not move on
# that insert (hubgate.db.change_triggers), so these are never kept.
_NEVER_KEPT = frozenset({"sso_required"})
_DIFFER = b"differ"
_ASSERTION = HEADER.lower().encode()


class GateRequest:
    """The few headers of a check, decoded once; ``host_header`` names the header
    the proxy puts the routed host in (``HUBGATE_HOST_HEADER``), if any."""

    __slots__ = ("ambiguous", "authorization", "cookie", "host", "method", "uri")

    def __init__(self, raw: list[tuple[bytes, bytes]], host_header: bytes | None = None) -> None:
        found: dict[bytes, bytes] = {}
        for name, value in raw:
            if name not in _WANTED and name != host_header:
                continue
            first = found.setdefault(name, value)
            if first is not _DIFFER and first != value and name != b"cookie":
                found[name] = _DIFFER  # the same header twice: one value is the client's
        host = found.get(host_header) if host_header else None
        self.host = None if host is None or host is _DIFFER else _text(host)
        uri = _agreed(found, b"x-original-uri", b"x-forwarded-uri")
        method = _agreed(found, b"x-original-method", b"x-forwarded-method")
        self.ambiguous = _DIFFER in (uri, method, host)
        self.uri = "" if self.ambiguous else _text(uri)
        self.method = "GET" if self.ambiguous else _text(method) or "GET"
        authorization = found.get(b"authorization")  # _DIFFER is no Bearer: token_invalid
        self.authorization = None if authorization is None else _text(authorization)
        cookie = found.get(b"cookie")
        self.cookie = cookie_parser(_text(cookie)).get(COOKIE) if cookie else None

    def credential_key(self) -> bytes:
        """A digest of what names the caller (the token wins over the cookie, as in
        :func:`hubgate.gate.credentials.resolve`); ``b""`` for an anonymous caller."""
        if self.authorization is not None:
            return b"a" + hashlib.blake2b(self.authorization.encode(), digest_size=20).digest()
        if self.cookie:
            return b"c" + hashlib.blake2b(self.cookie.encode(), digest_size=20).digest()
        return b""


def _agreed(found: dict[bytes, bytes], nginx: bytes, others: bytes) -> bytes | None:
    """nginx's header or Traefik's and Caddy's; :data:`_DIFFER` when both came and
    differ (one of them is the client's, and hubgate cannot tell which)."""
    first, second = found.get(nginx), found.get(others)
    if first is not None and second is not None and first != second:
        return _DIFFER
    return first if first is not None else second


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("latin-1")


class Gate:
    """ASGI middleware answering :data:`PATH` itself; the rest goes to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        runtime: Runtime,
        usage: UsageCounter | None = None,
        minter: Minter | None = None,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.usage = usage
        self.minter = minter
        host_header = runtime.settings.host_header
        self.host_header = host_header.encode() if host_header else None
        self._routes: tuple[int | None, RouteTable] = (None, RouteTable(()))
        self.cache: DecisionCache[Answer] = DecisionCache(runtime.settings.gate_cache_entries)
        self.sequence = changes.for_url(runtime.settings.database_url)
        self._decisions: dict[str, Callable[[], None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] in _METHODS:
            answer = await self.answer(GateRequest(scope["headers"], self.host_header))
            headers = answer.headers + self.assertion(answer)
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)

    async def answer(self, request: GateRequest) -> Answer:
        """May the caller make the original request? From the cache when nothing
        has changed since it was computed; 503 while the database cannot say."""
        now = self.runtime.now()
        if request.ambiguous:
            answer = refusal(403, _AMBIGUOUS, now + MAX_AGE)
        else:
            try:
                answer = await self._mapped(request, now)
            except OperationalError as exc:
                log.warning("forward-auth: database unavailable: %s", exc)
                answer = refusal(503, _UNAVAILABLE, now)
        self._counter(answer.reason)()
        return answer

    async def _mapped(self, request: GateRequest, now: datetime) -> Answer:
        seq = None if self.sequence is None else await self.sequence.current()
        routes = await self._route_table(seq)
        route = routes.match(request.host, request.uri) or map_request(request.uri, request.method)
        if route is None:
            return refusal(403, _UNMAPPED, now + MAX_AGE)
        answer = await self._decided(request, route, now, seq)
        self._count_use(answer, route, now)
        return answer

    async def _route_table(self, seq: int | None) -> RouteTable:
        """The deployments bound to hosts and prefixes as of ``seq`` (read again
        whenever the sequence moved, or every time while it is unknown)."""
        known, table = self._routes
        if seq is None or seq != known:
            table = await to_thread.run_sync(route_table.current, self.runtime)
            self._routes = (seq, table)
        return table

    async def _decided(
        self, request: GateRequest, route: Route, now: datetime, seq: int | None
    ) -> Answer:
        key = (request.credential_key(), route)
        answer = self.cache.get(key, seq, now)
        if answer is None:
            answer = await to_thread.run_sync(
                evaluate, self.runtime, request.authorization, request.cookie, route
            )
            if answer.reason not in _NEVER_KEPT:
                self.cache.put(key, answer, seq, answer.until)
        return answer

    def assertion(self, answer: Answer) -> Headers:
        """``X-Hubgate-Assertion`` for an allowed answer, when assertions are on: the
        minter reuses one per caller and resource for half its life."""
        if self.minter is None or answer.subject is None:
            return ()
        return ((_ASSERTION, self.minter.mint(answer.subject).encode()),)

    def _count_use(self, answer: Answer, route: Route, now: datetime) -> None:
        """An allowed inference call by a token counts towards its usage."""
        token, resource = answer.token_id, answer.resource_id
        if self.usage is None or token is None or resource is None:
            return
        if answer.allowed and route.action is Action.CALL:
            self.usage.count(token, resource, now)

    def _counter(self, reason: str) -> Callable[[], None]:
        """The metric child's ``inc`` for ``reason``, looked up once (reasons are a
        closed set of codes)."""
        found = self._decisions.get(reason)
        if found is None:
            child: Counter = metrics.DECISIONS.labels("forward_auth", reason)
            found = self._decisions[reason] = child.inc
        return found

    def close(self) -> None:
        if self.sequence is not None:
            self.sequence.close()
