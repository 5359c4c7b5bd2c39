"""How ``hubgate demo`` leaves on SIGTERM and SIGHUP (:mod:`hubgate.demo`).

A handler that raised while uvicorn served could land inside one of the event
loop's callbacks, which logged the exception and went on serving: CI saw a
SIGHUP leave the demo running. While serving, the signal must ask the server to
stop; the exit follows once ``run`` has returned."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import pytest

from hubgate.demo import STARTUP_FAILURE, leaving_on_signals


@dataclass
class FakeServer:
    """Receives ``signum`` in the middle of ``run``, as a served request would."""

    signum: int | None = None
    started: bool = True
    should_exit: bool = False
    seen: list[str] = field(default_factory=list)

    def run(self) -> None:
        if self.signum is not None:
            signal.raise_signal(self.signum)  # the handler runs here, in this thread
        self.seen.append(f"run went on, should_exit={self.should_exit}")


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_serving_stops_the_server_then_leaves(sent: signal.Signals) -> None:
    server = FakeServer(signum=sent)
    with pytest.raises(SystemExit) as left, leaving_on_signals() as leaving:
        leaving.serve(server)
    assert server.seen == ["run went on, should_exit=True"]
    assert left.value.code == 128 + sent


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_before_the_server_runs_leaves_at_once(sent: signal.Signals) -> None:
    after: list[str] = []
    with pytest.raises(SystemExit) as left, leaving_on_signals():
        signal.raise_signal(sent)
        after.append("not reached")
    assert after == []
    assert left.value.code == 128 + sent


def test_a_server_that_did_not_start_fails_as_uvicorn_run_does() -> None:
    with pytest.raises(SystemExit) as left, leaving_on_signals() as leaving:
        leaving.serve(FakeServer(started=False))
    assert left.value.code == STARTUP_FAILURE


def test_a_server_that_ends_on_its_own_leaves_no_exit_behind() -> None:
    server = FakeServer()
    with leaving_on_signals() as leaving:
        leaving.serve(server)
    assert server.seen == ["run went on, should_exit=False"]


def test_the_previous_handlers_are_back_after_the_block() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(SystemExit), leaving_on_signals() as leaving:
        leaving.serve(FakeServer(signum=signal.SIGHUP))
    assert {s: signal.getsignal(s) for s in before} == before
