"""A MIME message from an outbox row: plain text with an HTML alternative."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

__all__ = ["Outgoing", "compose", "text_to_html"]

_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}'\""
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Outgoing:
    """An outbox row as claimed for delivery."""

    id: int
    recipient: str
    subject: str
    body: str
    html: str | None
    attempts: int
    created_at: datetime


def compose(mail: Outgoing, sender: str, now: datetime) -> EmailMessage:
    """The message for ``mail``, from ``sender`` (``HUBGATE_MAIL_FROM``).

    Its Message-ID is derived from the row, so a resend after a crash (delivery is
    at least once) carries the same id and a receiver may drop the duplicate.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = _message_id(mail, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    message.set_content(mail.body)
    message.add_alternative(mail.html or text_to_html(mail.body), subtype="html")
    return message


def _message_id(mail: Outgoing, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "hubgate.invalid"
    return f"<outbox.{mail.id}.{mail.created_at:%Y%m%d%H%M%S%f}@{domain}>"


def text_to_html(text: str) -> str:
    """``text`` as HTML: escaped, blank lines make paragraphs, line breaks stay,
    and web links are clickable."""
    paragraphs = [p for p in _PARAGRAPH.split(text.strip()) if p.strip()]
    inner = "\n".join(_paragraph(p) for p in paragraphs)
    return f"<!DOCTYPE html>\n<html><body>\n{inner}\n</body></html>\n"


def _paragraph(text: str) -> str:
    return "<p>" + "<br>\n".join(_linked(line) for line in text.splitlines()) + "</p>"


def _linked(text: str) -> str:
    """Escape ``text``, turning each http(s) URL into a link (without trailing punctuation)."""
    parts, start = [], 0
    for match in _LINK.finditer(text):
        url = match.group().rstrip(_TRAILING)
        parts.append(html.escape(text[start : match.start()]))
        parts.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        start = match.start() + len(url)
    parts.append(html.escape(text[start:]))
    return "".join(parts)
