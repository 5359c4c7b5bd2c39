"""No network call while a database transaction is open (issue 18 item 2), and
none on a request thread.

A slow IdP or DNS server must never hold a transaction open: on SQLite that holds
the one writer lock of every worker. :func:`install` follows the root transaction
of every ORM :class:`~sqlalchemy.orm.Session` per thread (session events), and
wraps the outbound entry points: :meth:`http.client.HTTPConnection.request` (what
:mod:`hubgate.sso.fetch` sends through), httpx's :class:`~httpx.HTTPTransport`, dnspython's
:meth:`~dns.resolver.Resolver.resolve`, and :func:`socket.getaddrinfo` for the
rest (SMTP, any other socket opened by name). While :data:`armed`, such a call
made by a thread with a transaction open raises ``AssertionError("network call
inside a transaction: ...")``, and is kept in :data:`violations` so that one
swallowed by the code under test still fails the test (``tests/conftest.py``).

A request thread (hubgate's own, or the anyio worker thread FastAPI runs a plain
``def`` endpoint on) must not wait on the network: a call made there holds one of
the worker's few request threads for as long as the IdP or the DNS server takes,
and raises ``AssertionError("network call on a request thread: ...")`` the same
way. The network threads of :mod:`hubgate.web.threads` are where such waits go.
A blocking call made on the event loop's own thread would stall every request of
the worker, and raises ``AssertionError("network call blocking the event loop:
...")``; the loop awaits the provider through :mod:`hubgate.sso.fetch_loop`, whose
test doubles say so with :func:`awaited`.

Test doubles that stand in for the fetcher call :func:`outbound` themselves.
Nothing is allowed by name: the OIDC sign-in callback, the last caller that needed
it, has made its token, JWKS and userinfo requests with no transaction open since
the one-way sign-in (issue 18 item 1).
"""

from __future__ import annotations

import asyncio
import contextvars
import http.client
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import dns.resolver
import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from hubgate.web.threads import REQUEST_THREAD_NAME

__all__ = ["armed", "awaited", "install", "outbound", "violations"]

armed = False
violations: list[str] = []
_open: dict[int, int] = {}  # id(root SessionTransaction) -> the thread that opened it
_lock = threading.Lock()

_DRIVERS = ("psycopg",)
"""The database driver opening its own connection (inside a transaction, by
definition) is not an outbound call."""


def _created(_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        with _lock:
            _open[id(transaction)] = threading.get_ident()


def _ended(_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        with _lock:
            _open.pop(id(transaction), None)


def in_transaction() -> bool:
    """Whether the calling thread has a session transaction open."""
    with _lock:
        return threading.get_ident() in _open.values()


def _callers() -> list[tuple[str, str]]:
    frame: FrameType | None = sys._getframe(2)
    found = []
    while frame is not None:
        found.append((str(frame.f_globals.get("__name__", "")), frame.f_code.co_name))
        frame = frame.f_back
    return found


def _exempt() -> bool:
    return any(module.startswith(_DRIVERS) for module, _ in _callers())


_REQUEST_THREADS = frozenset({REQUEST_THREAD_NAME, "AnyIO worker thread"})


def on_request_thread() -> bool:
    """Whether the calling thread is one that serves requests."""
    return threading.current_thread().name in _REQUEST_THREADS


_awaited: contextvars.ContextVar[bool] = contextvars.ContextVar("awaited", default=False)


@contextmanager
def awaited() -> Iterator[None]:
    """A test double standing in for the event loop's fetcher calls :func:`outbound`
    inside this: on the event loop, that call is awaited, not blocking."""
    token = _awaited.set(True)
    try:
        yield
    finally:
        _awaited.reset(token)


def blocking_the_event_loop() -> bool:
    """Whether the calling thread runs an event loop (and the call is not awaited)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return not _awaited.get()


def outbound(what: str) -> None:
    """Refuse ``what`` (a network call about to be made) if a transaction is open,
    it would hold a request thread, or it would block the event loop."""
    if not armed or _exempt():
        return
    where = "inside a transaction" if in_transaction() else None
    if where is None and on_request_thread():
        where = "on a request thread"
    if where is None and blocking_the_event_loop():
        where = "blocking the event loop"
    if where is not None:
        message = f"network call {where}: {what}"
        violations.append(message)
        raise AssertionError(message)


def _guarded(original: Callable[..., Any], describe: Callable[..., str]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        outbound(describe(*args, **kwargs))
        return original(*args, **kwargs)

    return guarded


_installed = False


def install() -> None:
    """Follow transactions and wrap the entry points, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Session, "after_transaction_create", _created)
    event.listen(Session, "after_transaction_end", _ended)
    send = http.client.HTTPConnection.request
    http.client.HTTPConnection.request = _guarded(  # type: ignore[method-assign]
        send, lambda self, method, url, *_a, **_k: f"HTTP {method} {self.host}:{self.port}{url}"
    )
    transport = httpx.HTTPTransport.handle_request
    httpx.HTTPTransport.handle_request = _guarded(  # type: ignore[method-assign]
        transport, lambda _self, request: f"HTTP {request.method} {request.url}"
    )
    resolve = dns.resolver.Resolver.resolve
    dns.resolver.Resolver.resolve = _guarded(  # type: ignore[method-assign]
        resolve, lambda _self, name, rdtype="A", *_a, **_k: f"DNS {rdtype} {name}"
    )
    socket.getaddrinfo = _guarded(
        socket.getaddrinfo, lambda host, port, *_a, **_k: f"getaddrinfo {host}:{port}"
    )
