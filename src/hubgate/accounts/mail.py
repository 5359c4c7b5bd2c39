"""Outgoing mail, written to the transactional outbox.

:class:`OutboxMailer` adds a pending row to the caller's transaction, so a
message exists exactly when the change that caused it commits; a sender outside
any request delivers it over SMTP (:mod:`hubgate.mail.sender`), and
``hubgate mail outbox`` shows it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session

from hubgate.db.models import OutboxMail

__all__ = ["Mailer", "OutboxMailer"]

log = logging.getLogger("hubgate.mail")


class Mailer(Protocol):
    def send(
        self, db: Session, recipient: str, subject: str, body: str, *, html: str | None = None
    ) -> None: ...


class OutboxMailer:
    def send(
        self, db: Session, recipient: str, subject: str, body: str, *, html: str | None = None
    ) -> None:
        """Queue a message (plain ``body``, optional ``html`` alternative) in ``db``'s
        transaction; it is never sent if that transaction rolls back."""
        db.add(OutboxMail(recipient=recipient, subject=subject, body=body, html=html))
        log.info("mail to %s: %s", recipient, subject)
