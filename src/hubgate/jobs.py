"""What each instance does in the background (:class:`hubgate.worker.Worker`).

Add a job here: a name, a callable that does one pass of its work in short
transactions of its own, and how often to run it.
"""

from __future__ import annotations

from functools import partial

from hubgate.mail.sender import build_sender
from hubgate.runtime import Runtime
from hubgate.worker import Job

__all__ = ["MAIL_POLL_SECONDS", "background_jobs"]

MAIL_POLL_SECONDS = 5.0
MAIL_BATCHES_PER_PASS = 10


def background_jobs(rt: Runtime) -> list[Job]:
    """The jobs of an instance of ``rt``; mail only when ``HUBGATE_SMTP_URL`` is set."""
    jobs = []
    sender = build_sender(rt)
    if sender is not None:
        send = partial(sender.send_due, max_batches=MAIL_BATCHES_PER_PASS)
        jobs.append(Job("mail", send, every=MAIL_POLL_SECONDS))
    return jobs
