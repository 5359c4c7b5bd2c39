"""The background worker runs each job in its own error boundary."""

from __future__ import annotations

import pytest

from hubgate.worker import Job, Worker


def test_a_failing_job_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("the SMTP server said no")

    worker = Worker(
        [Job("broken", broken, every=60), Job("mail", lambda: ran.append("mail"), every=60)]
    )
    worker.run_due()
    worker.run_due()  # neither is due again for a minute
    assert ran == ["broken", "mail"]
    assert "background job broken failed" in caplog.text
    assert "the SMTP server said no" in caplog.text


def test_a_stopped_worker_runs_nothing_more() -> None:
    ran: list[str] = []
    worker = Worker([Job("mail", lambda: ran.append("mail"), every=0)])
    worker.stop()
    worker.run_due()
    assert ran == [] and not worker.running
