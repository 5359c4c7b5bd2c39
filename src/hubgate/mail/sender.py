"""Delivers the outbox over SMTP, never inside a database transaction.

A pass claims a batch of due rows in one short transaction, sends each over one
SMTP connection, and settles each row in a short transaction of its own right
after its send. Delivery is at least once: a crash between a send and its
settling leaves the row claimed until the lease runs out, and then it is sent
again (with the same Message-ID, see :func:`hubgate.mail.message.compose`).
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hubgate import metrics
from hubgate.db.types import utcnow
from hubgate.mail import outbox
from hubgate.mail.message import Outgoing, compose
from hubgate.mail.smtp import Transport

if TYPE_CHECKING:
    from hubgate.db.engine import Database
    from hubgate.runtime import Runtime

__all__ = ["Report", "Sender", "build_sender", "instance_id"]

log = logging.getLogger("hubgate.mail")

# Refusals of one message; the connection stays usable for the next one.
_REFUSED = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPNotSupportedError,
)


@dataclass
class Report:
    """What a pass did: rows sent, rows to be retried, rows given up."""

    sent: int = 0
    retried: int = 0
    failed: int = 0


def instance_id() -> str:
    """This process among the instances: host, pid and a random tag (``claimed_by``)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Sender:
    db: Database
    transport: Transport
    mail_from: str
    instance: str
    clock: Callable[[], datetime] = utcnow

    def send_due(self, *, max_batches: int | None = None) -> Report:
        """Deliver the rows that are due now, batch by batch (at most ``max_batches``,
        so a background pass ends soon enough for a shutdown), and update the gauges."""
        report = Report()
        batches = 0
        while (max_batches is None or batches < max_batches) and (batch := self._claim()):
            self._deliver(batch, report)
            batches += 1
        self._observe()
        return report

    def _claim(self) -> list[Outgoing]:
        with self.db.transaction() as db:
            return outbox.claim(db, self.instance, self.clock())

    def _deliver(self, batch: list[Outgoing], report: Report) -> None:
        """Send ``batch`` over one connection; if it cannot be opened or breaks, each
        row not yet settled records the error as a failed attempt."""
        waiting = list(batch)
        try:
            with self.transport.connect() as connection:
                while waiting:
                    self._send_one(connection, waiting[0], report)
                    waiting.pop(0)
        except (OSError, smtplib.SMTPException) as exc:
            for mail in waiting:
                self._failed(mail, exc, report)

    def _send_one(self, connection: smtplib.SMTP, mail: Outgoing, report: Report) -> None:
        try:
            message = compose(mail, self.mail_from, self.clock())
        except ValueError as exc:  # e.g. a line break in a header: never deliverable
            self._failed(mail, exc, report, final=True)
            return
        try:
            connection.send_message(message)
        except _REFUSED as exc:
            self._failed(mail, exc, report)
            return
        self._sent(mail, report)

    def _sent(self, mail: Outgoing, report: Report) -> None:
        with self.db.transaction() as db:
            outbox.mark_sent(db, mail.id, self.clock())
        metrics.MAIL_SENT.inc()
        report.sent += 1
        log.info("mail %d sent to %s", mail.id, mail.recipient)

    def _failed(
        self, mail: Outgoing, exc: Exception, report: Report, *, final: bool = False
    ) -> None:
        error = self._describe(exc)
        with self.db.transaction() as db:
            outcome = outbox.mark_failed_attempt(
                db, mail, self.instance, error, self.clock(), final=final
            )
        if outcome is None:
            return
        metrics.MAIL_FAILURES.labels(outcome).inc()
        if outcome == "final":
            report.failed += 1
        else:
            report.retried += 1
        log.warning(
            "mail %d to %s via %s: attempt %d failed (%s)%s", mail.id, mail.recipient,
            self.transport.server, mail.attempts + 1, error,
            "; giving up" if outcome == "final" else "; will retry",
        )  # fmt: skip

    def _describe(self, exc: Exception) -> str:
        """The error for ``last_error`` and the log; the SMTP password never shows."""
        text = f"{type(exc).__name__}: {exc}"
        password = self.transport.server.password
        return text.replace(password, "***") if password else text

    def _observe(self) -> None:
        with self.db.transaction() as db:
            found = outbox.counts(db)
        for status, count in found.items():
            metrics.MAIL_OUTBOX.labels(status).set(count)


def build_sender(rt: Runtime, *, instance: str | None = None) -> Sender | None:
    """The sender of this instance, or ``None`` when ``HUBGATE_SMTP_URL`` is unset
    (mail then stays in the outbox)."""
    server = rt.settings.smtp_server
    if server is None:
        return None
    transport = Transport(server, local_hostname=urlsplit(rt.settings.base_url).hostname)
    return Sender(
        db=rt.db, transport=transport, mail_from=rt.settings.mail_from,
        instance=instance or instance_id(), clock=rt.now,
    )  # fmt: skip
