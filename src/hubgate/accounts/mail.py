"""Outgoing mail through a pluggable mailer.

The default :class:`OutboxMailer` writes each message to the log and to the
``outbox`` table, which ``hubgate mail outbox`` shows; a deployment that sends
real mail plugs in another :class:`Mailer`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session

from hubgate.db.models import OutboxMail

__all__ = ["Mailer", "OutboxMailer"]

log = logging.getLogger("hubgate.mail")


class Mailer(Protocol):
    def send(self, db: Session, recipient: str, subject: str, body: str) -> None: ...


class OutboxMailer:
    def send(self, db: Session, recipient: str, subject: str, body: str) -> None:
        db.add(OutboxMail(recipient=recipient, subject=subject, body=body))
        log.info("mail to %s: %s", recipient, subject)
