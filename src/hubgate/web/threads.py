"""Where a request's blocking work runs: on a request thread, or on a network thread.

Request threads run what needs the database and the CPU. FastAPI runs every plain
``def`` endpoint and dependency on them, as many at once as
``Settings.request_threads``: one per worker on SQLite, four on PostgreSQL. That
few, because a worker's Python runs under one GIL anyway: more threads only pass
it back and forth.

Waiting on an identity provider (a token exchange, its keys and userinfo, a
discovery or metadata document, a DNS answer) runs on a network thread instead
(:func:`on_network_thread`). Many can wait at once and none of them holds a request
thread, so a slow provider delays its own sign-ins and nobody else's. When the
waits held request threads, two workers with a token endpoint 100 ms away
completed 32 OIDC sign-ins/s with their CPUs 83% idle, and every other request
queued behind them (``bench/oidc.py --token-latency-ms 100``).

A sign-in's callback is therefore split into steps (:class:`Steps`), and
:func:`in_steps` runs each where it belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar, TypeVarTuple, Unpack

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

__all__ = ["NETWORK_THREADS", "Steps", "in_steps", "network_wait", "on_network_thread"]

NETWORK_THREADS = 32
"""Network waits at once per worker; more wait for one of these threads."""

_LIMITER: RunVar[CapacityLimiter] = RunVar("hubgate_network_threads")
_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")
_Spent = TypeVar("_Spent")
_Answer = TypeVar("_Answer")
_Done_co = TypeVar("_Done_co", covariant=True)


class Steps(Protocol[_Spent, _Answer, _Done_co]):
    """A sign-in's callback: ``spend`` its one-time state (the database), ``verify``
    the answer with the provider (the network, no transaction open), ``conclude``
    with the account and the session (the database)."""

    def spend(self) -> _Spent: ...

    def verify(self, spent: _Spent, /) -> _Answer: ...

    def conclude(self, answer: _Answer, /) -> _Done_co: ...


async def in_steps(steps: Steps[_Spent, _Answer, _Done_co]) -> _Done_co:
    """Spend and conclude on request threads; verify on a network thread."""
    spent = await to_thread.run_sync(steps.spend)
    answer = await on_network_thread(steps.verify, spent)
    return await to_thread.run_sync(steps.conclude, answer)


async def on_network_thread(function: Callable[[Unpack[_Args]], _T], *args: *_Args) -> _T:
    """``function(*args)`` on one of this worker's network threads."""
    return await to_thread.run_sync(network_wait, function, *args, limiter=_limiter())


def network_wait(function: Callable[[Unpack[_Args]], _T], *args: *_Args) -> _T:
    """``function(*args)``: the frame that marks a network thread's work, which the
    test suite's guard looks for (a network call on a request thread outside it
    fails the test, tests/network_guard.py)."""
    return function(*args)


def _limiter() -> CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = CapacityLimiter(NETWORK_THREADS)
        _LIMITER.set(limiter)
        return limiter
