"""Where a request's blocking work runs: on a request thread, or on a network thread.

Request threads run what needs the database and the CPU, as many at once per
worker as ``Settings.request_threads``: one on SQLite, four on PostgreSQL. That
few, because a worker's Python runs under one GIL anyway: more threads only pass
it back and forth. The web layer's own hops (a sign-in's steps and routes, the
credential behind a cookie or token, SCIM) go to :func:`on_request_thread`;
FastAPI runs its plain ``def`` endpoints and dependencies, and the gate its
decisions, on anyio's worker threads, limited to the same number (``hubgate.app``).

Waiting on an identity provider never holds a request thread. An org OIDC
sign-in awaits its token exchange, keys and userinfo on the event loop
(:mod:`hubgate.sso.fetch_loop`); the other waits (a platform provider's sign-in, a
discovery or metadata document, a DNS answer) run on a network thread
(:func:`on_network_thread`). Many can wait at once and none of them holds a request
thread, so a slow provider delays its own sign-ins and nobody else's. When the
waits held request threads, two workers with a token endpoint 100 ms away
completed 32 OIDC sign-ins/s with their CPUs 83% idle, and every other request
queued behind them (``bench/oidc.py --token-latency-ms 100``).

A sign-in's callback is therefore split into steps (:class:`Steps`), and
:func:`in_steps` runs each where it belongs.

Both kinds of thread are :class:`Threads`: a queue the event loop puts a job on
and a few threads that answer through the loop's own wake-up. anyio's
``to_thread.run_sync`` does the same behind cancel scopes, a capacity limiter and
a look-up of the running async library; the event loop's side of it cost a sixth
of hubgate's CPU per OIDC sign-in (four hops), and complete sign-ins ran 18%
faster without it (bench/oidc.py's sign-ins, old and new servers taking turns).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, TypeVarTuple, Unpack, cast

__all__ = [
    "NETWORK_THREADS",
    "NETWORK_THREAD_NAME",
    "REQUEST_THREAD_NAME",
    "Steps",
    "Threads",
    "in_steps",
    "on_network_thread",
    "on_request_thread",
    "set_request_threads",
]

NETWORK_THREADS = 32
"""Network waits at once per worker; more wait for one of these threads."""
REQUEST_THREAD_NAME = "hubgate request thread"
NETWORK_THREAD_NAME = "hubgate network thread"

_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")
_Spent = TypeVar("_Spent")
_Answer = TypeVar("_Answer")
_Done_co = TypeVar("_Done_co", covariant=True)

_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    contextvars.Context,
    Callable[..., Any],
    tuple[Any, ...],
]


class Threads:
    """Up to ``size`` threads of this process, started as jobs need them and kept
    for the next ones, running jobs in the order they came.

    A job runs in a copy of the caller's context (its trace id, as anyio does).
    A caller cancelled while its job runs (the server shutting down) stops waiting;
    the job runs to its end, as a transaction under way must.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._empty()
        os.register_at_fork(after_in_child=self._empty)

    def _empty(self) -> None:
        """No jobs and no threads: a forked child has none of its parent's threads."""
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._unfinished = 0

    async def run(self, function: Callable[[Unpack[_Args]], _T], *args: *_Args) -> _T:
        """``function(*args)`` on one of these threads; its answer or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._lock:
            self._unfinished += 1
            grow = self._unfinished > self._started and self._started < self.size
            if grow:
                self._started += 1
        if grow:
            try:  # before the job is queued: a thread that cannot start leaves none waiting
                threading.Thread(target=self._serve, name=self.name, daemon=True).start()
            except BaseException:
                with self._lock:
                    self._started -= 1
                    self._unfinished -= 1
                raise
        self._jobs.put((loop, future, contextvars.copy_context(), function, args))
        return await future

    def _serve(self) -> None:
        while True:
            loop, future, context, function, args = self._jobs.get()
            try:
                outcome: tuple[Callable[..., None], Any] = (_answer, context.run(function, *args))
            except BaseException as exc:  # noqa: BLE001 -- it belongs to the caller
                outcome = (_raise, exc)
            try:
                loop.call_soon_threadsafe(outcome[0], future, outcome[1])
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                pass
            del loop, future, context, function, args, outcome
            with self._lock:
                self._unfinished -= 1
                if self._started > self.size:  # fewer were asked for meanwhile
                    self._started -= 1
                    return


def _answer(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _raise(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(RuntimeError(exc) if isinstance(exc, StopIteration) else exc)


_REQUEST = Threads(REQUEST_THREAD_NAME, 1)
_NETWORK = Threads(NETWORK_THREAD_NAME, NETWORK_THREADS)


def set_request_threads(count: int) -> None:
    """How many request threads this process runs (its app's ``request_threads``);
    threads beyond that end after their job."""
    _REQUEST.size = count


class Steps(Protocol[_Spent, _Answer, _Done_co]):
    """A sign-in's callback: ``spend`` its one-time state (the database), ``verify``
    the answer with the provider (the network, no transaction open), ``conclude``
    with the account and the session (the database). ``verify`` is a coroutine
    when it awaits the provider on the event loop, else a plain function."""

    def spend(self) -> _Spent: ...

    def verify(self, spent: _Spent, /) -> _Answer | Awaitable[_Answer]: ...

    def conclude(self, answer: _Answer, /) -> _Done_co: ...


async def in_steps(steps: Steps[_Spent, _Answer, _Done_co]) -> _Done_co:
    """Spend and conclude on request threads; verify on the event loop when it is
    a coroutine, else on a network thread."""
    spent = await _REQUEST.run(steps.spend)
    if inspect.iscoroutinefunction(steps.verify):
        answer = await cast(Callable[[_Spent], Awaitable[_Answer]], steps.verify)(spent)
    else:
        answer = await _NETWORK.run(cast(Callable[[_Spent], _Answer], steps.verify), spent)
    return await _REQUEST.run(steps.conclude, answer)


async def on_request_thread(function: Callable[[Unpack[_Args]], _T], *args: *_Args) -> _T:
    """``function(*args)`` on one of this worker's request threads."""
    return await _REQUEST.run(function, *args)


async def on_network_thread(function: Callable[[Unpack[_Args]], _T], *args: *_Args) -> _T:
    """``function(*args)`` on one of this worker's network threads."""
    return await _NETWORK.run(function, *args)
