"""The request and network threads of :mod:`hubgate.web.threads`: a job's answer or
exception comes back to its caller, in the caller's context, on a thread of the
right kind; no more threads run at once than asked for, and a job that waits
does not hold back the next one while another thread may start."""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading

import anyio
import pytest

from hubgate.web import threads
from hubgate.web.threads import Threads

LIVENESS_SECONDS = 20
"""How long an event the test waits for may take before the test calls it stuck."""

_trace: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="none")


class Held:
    """A job that answers ``value`` once released, telling when it has begun."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.entered, self.released = threading.Event(), threading.Event()

    def __call__(self) -> str:
        self.entered.set()
        assert self.released.wait(LIVENESS_SECONDS)
        return self.value


def test_a_job_answers_on_a_thread_of_its_kind_in_the_callers_context() -> None:
    async def call() -> tuple[str, str, str]:
        _trace.set("t-1")
        request = await threads.on_request_thread(
            lambda: (threading.current_thread().name, _trace.get())
        )
        network = await threads.on_network_thread(threading.current_thread)
        return *request, network.name

    assert anyio.run(call) == (
        threads.REQUEST_THREAD_NAME,
        "t-1",
        threads.NETWORK_THREAD_NAME,
    )


def test_a_jobs_exception_is_raised_to_its_caller() -> None:
    def refuse(reason: str) -> None:
        raise PermissionError(reason)

    with pytest.raises(PermissionError, match="no"):
        anyio.run(threads.on_request_thread, refuse, "no")


def test_stop_iteration_reaches_the_caller_as_a_runtime_error() -> None:
    """A future cannot carry StopIteration; the caller still learns the job failed."""
    with pytest.raises(RuntimeError):
        anyio.run(threads.on_request_thread, next, iter(()))


def test_one_thread_runs_one_job_at_a_time_in_order() -> None:
    pool = Threads("one", 1)
    running, most, order = 0, 0, []
    lock = threading.Lock()

    def job(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        order.append(n)
        with lock:
            running -= 1
        return n

    async def many() -> list[int]:
        return list(await asyncio.gather(*(pool.run(job, n) for n in range(20))))

    assert anyio.run(many) == list(range(20))
    assert most == 1 and order == list(range(20))


def test_a_waiting_job_does_not_hold_back_the_next_one() -> None:
    """A network thread waiting on a slow provider: the next job starts a thread of
    its own and finishes first."""
    pool, slow = Threads("network", 4), Held("slow")

    async def both() -> list[str]:
        finished: list[str] = []

        async def run(job: str) -> None:
            finished.append(await pool.run(slow) if job == "slow" else await pool.run(str, job))

        async with anyio.create_task_group() as group:
            group.start_soon(run, "slow")
            await anyio.to_thread.run_sync(slow.entered.wait, LIVENESS_SECONDS)
            await run("fast")
            slow.released.set()
        return finished

    assert anyio.run(both) == ["fast", "slow"]


def test_no_more_threads_run_than_its_size() -> None:
    pool = Threads("two", 2)
    inside, most = 0, 0
    lock, gate = threading.Lock(), threading.Barrier(2, timeout=LIVENESS_SECONDS)

    def job() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        gate.wait()  # two at once, or the barrier breaks
        with lock:
            inside -= 1

    async def many() -> None:
        await asyncio.gather(*(pool.run(job) for _ in range(8)))

    anyio.run(many)
    assert most == 2


def test_threads_beyond_a_smaller_size_end_after_their_next_job() -> None:
    pool = Threads("shrinking", 3)
    gate = threading.Barrier(3, timeout=LIVENESS_SECONDS)

    async def fill() -> set[int]:
        idents = await asyncio.gather(*(pool.run(_wait_then_ident, gate) for _ in range(3)))
        return set(idents)

    assert len(anyio.run(fill)) == 3
    pool.size = 1

    async def after() -> set[int]:
        for _ in range(3):  # each thread beyond the size ends after its next job
            await pool.run(threading.get_ident)
        idents = await asyncio.gather(*(pool.run(threading.get_ident) for _ in range(6)))
        return set(idents)

    assert len(anyio.run(after)) == 1


def _wait_then_ident(gate: threading.Barrier) -> int:
    gate.wait()
    return threading.get_ident()


def test_a_job_whose_caller_is_gone_leaves_the_thread_serving() -> None:
    """The caller's event loop closed before the job ended (a test client that
    exited, a worker that stopped): the thread drops the answer and goes on."""
    pool, slow = Threads("orphaned", 1), Held("late")

    async def abandon() -> None:
        with anyio.move_on_after(LIVENESS_SECONDS):
            async with anyio.create_task_group() as group:
                group.start_soon(pool.run, slow)
                await anyio.to_thread.run_sync(slow.entered.wait, LIVENESS_SECONDS)
                group.cancel_scope.cancel()

    anyio.run(abandon)  # its loop is closed now
    slow.released.set()
    assert anyio.run(pool.run, str, "next") == "next"


def test_a_forked_child_starts_threads_of_its_own() -> None:
    """A child forked after the parent's threads started has none of them; its
    first job must not wait for a thread that is not there."""
    pool = Threads("forked", 1)
    assert anyio.run(pool.run, str, "parent") == "parent"
    child = os.fork()
    if child == 0:  # pragma: no cover -- the child reports through its exit status
        ok = False
        try:
            ok = anyio.run(_within, pool, LIVENESS_SECONDS) == "child"
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def _within(pool: Threads, seconds: float) -> str | None:
    with anyio.move_on_after(seconds):
        return await pool.run(str, "child")
    return None


def test_a_thread_that_cannot_start_fails_its_job_and_leaves_the_pool_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to run it (the process is out of threads): the caller gets the
    error at once instead of waiting forever, and the next job starts a thread."""
    pool = Threads("starved", 1)

    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", cannot_start)
        with pytest.raises(RuntimeError, match="can't start"):
            anyio.run(pool.run, str, "lost")
    assert anyio.run(pool.run, str, "next") == "next"
