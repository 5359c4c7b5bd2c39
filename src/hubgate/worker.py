"""Background work of an instance, outside any request: named periodic jobs run
one after another on one thread, each in its own error boundary.

The jobs an instance runs are listed by :func:`hubgate.jobs.background_jobs`; the
app's lifespan starts a :class:`Worker` for them and stops it on shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Job", "Worker"]

log = logging.getLogger("hubgate.worker")


@dataclass(frozen=True)
class Job:
    """``run`` every ``every`` seconds (counted from the end of its last run)."""

    name: str
    run: Callable[[], object]
    every: float


class Worker:
    """Runs its jobs on a daemon thread until :meth:`stop`; each job first runs at start."""

    def __init__(self, jobs: Sequence[Job], *, tick: float = 1.0) -> None:
        self.jobs = tuple(jobs)
        self._tick = tick
        self._due = dict.fromkeys((job.name for job in self.jobs), 0.0)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hubgate-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the thread to end and wait for the job it is running to finish."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run_due(self) -> None:
        """Run each job whose time has come, once."""
        for job in self.jobs:
            if self._stopping.is_set():
                return
            if time.monotonic() >= self._due[job.name]:
                self._run(job)
                self._due[job.name] = time.monotonic() + job.every

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.run_due()
            self._stopping.wait(self._tick)

    @staticmethod
    def _run(job: Job) -> None:
        """One job's error boundary: a failure is logged, and the other jobs (and the
        next run of this one) go on."""
        try:
            job.run()
        except Exception:  # noqa: BLE001 - the boundary between jobs; logged with its traceback
            log.exception("background job %s failed", job.name)
