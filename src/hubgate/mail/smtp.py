"""A connection to the SMTP server of ``HUBGATE_SMTP_URL`` (RFC 5321), over TLS
when it can be: ``smtps://`` is TLS from the first byte (RFC 8314), ``smtp://``
upgrades with STARTTLS (RFC 3207) when the server offers it. A password is only
ever sent over TLS, and every network call times out.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubgate.config import SmtpServer

__all__ = ["TIMEOUT_SECONDS", "PasswordWithoutTls", "Transport"]

TIMEOUT_SECONDS = 30.0


class PasswordWithoutTls(smtplib.SMTPException):
    """The URL has credentials but the server offers no STARTTLS: they are not sent
    in the clear (use a server with STARTTLS, or smtps://)."""

    def __init__(self) -> None:
        super().__init__(
            "the server offers no STARTTLS, and credentials are never sent without TLS"
        )


@dataclass(frozen=True)
class Transport:
    """Opens connections to ``server``; ``tls`` decides which certificates to trust
    (the system's by default) and ``local_hostname`` is what EHLO says."""

    server: SmtpServer
    local_hostname: str | None = None
    tls: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    timeout: float = TIMEOUT_SECONDS

    @contextmanager
    def connect(self) -> Iterator[smtplib.SMTP]:
        """A connection, secured and logged in, that says QUIT when done."""
        client = self._open()
        try:
            self._secure(client)
            self._login(client)
            yield client
        finally:
            _close(client)

    def _open(self) -> smtplib.SMTP:
        host, port, name = self.server.host, self.server.port, self.local_hostname
        if self.server.implicit_tls:
            return smtplib.SMTP_SSL(
                host, port, local_hostname=name, timeout=self.timeout, context=self.tls
            )
        return smtplib.SMTP(host, port, local_hostname=name, timeout=self.timeout)

    def _secure(self, client: smtplib.SMTP) -> None:
        client.ehlo()
        if not self.server.implicit_tls and client.has_extn("starttls"):
            client.starttls(context=self.tls)
            client.ehlo()

    def _login(self, client: smtplib.SMTP) -> None:
        if self.server.username is None:
            return
        if not isinstance(client.sock, ssl.SSLSocket):
            raise PasswordWithoutTls
        client.login(self.server.username, self.server.password or "")


def _close(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
