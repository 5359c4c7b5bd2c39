"""Certificate expiry of SSO connections, so an expired IdP signing certificate
(the most common way a working SAML integration breaks) never goes unnoticed.

Each certificate is shown with its expiry; an active connection whose *last*
valid IdP signing certificate comes within 30 or 7 days of its notAfter, or is
past it, raises an alarm: a banner for the org's admins, a mail to them and an
audit event once per connection, certificate and threshold (the primary key of
``sso_certificate_notices`` lets one instance alone send it), and a Prometheus
gauge computed from the database at scrape time.

A newer certificate valid for longer (a rollover in progress) silences the
alarm: the IdP may sign with either, and the connection keeps working.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hubgate.db.engine import Database
from hubgate.db.models import Org, SsoConnection

__all__ = [
    "THRESHOLDS",
    "Alarm",
    "Certificate",
    "ExpiryCollector",
    "active_alarms",
    "alarm_of",
    "idp_certificates",
    "last_certificate",
    "read_certificate",
    "render",
    "shown",
    "sp_certificate",
    "threshold_of",
]

log = logging.getLogger("hubgate.sso")

THRESHOLDS = (("expired", 0), ("7_days", 7), ("30_days", 30))
"""Threshold name and the days left at or under which it is reached, nearest first."""
GAUGE = "hubgate_sso_certificate_expiry_timestamp_seconds"
_ACTIVE_SAML = and_(SsoConnection.kind == "saml", SsoConnection.state == "active")


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate of a connection, as admins need to see it."""

    fingerprint: str
    """SHA-256 of the DER encoding, hex: the name of this certificate in notices."""
    not_after: datetime

    def days_left(self, now: datetime) -> int:
        """Whole days until notAfter; negative once it has passed."""
        return (self.not_after - now) // timedelta(days=1)

    def expired(self, now: datetime) -> bool:
        return self.not_after <= now

    def relative(self, now: datetime) -> str:
        """ "in 12 days", "expired 3 days ago": what an admin reads at a glance."""
        if self.expired(now):
            ago = (now - self.not_after) // timedelta(days=1)
            return "expired today" if ago == 0 else f"expired {ago} day{'s' * (ago != 1)} ago"
        days = self.days_left(now)
        return "expires today" if days == 0 else f"in {days} day{'s' * (days != 1)}"


@lru_cache(maxsize=256)
def read_certificate(pem: str) -> Certificate | None:
    """The certificate in ``pem``, or ``None`` when it cannot be read (cached: every
    admin's org page asks, and the certificates of a deployment are few)."""
    try:
        loaded = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    return Certificate(loaded.fingerprint(hashes.SHA256()).hex(), loaded.not_valid_after_utc)


def idp_certificates(connection: SsoConnection) -> list[Certificate]:
    """The IdP signing certificates of a SAML connection (none for OIDC)."""
    if connection.kind != "saml":
        return []
    pems = json.loads(connection.settings).get("idp_certificates", [])
    found = (read_certificate(pem) for pem in pems if isinstance(pem, str))
    return [certificate for certificate in found if certificate is not None]


def sp_certificate(connection: SsoConnection) -> Certificate | None:
    """hubgate's own SP certificate of the connection, if it has one."""
    return read_certificate(connection.sp_certificate) if connection.sp_certificate else None


def shown(connection: SsoConnection, now: datetime) -> list[dict[str, object]]:
    """The connection's certificates as admins read them (API, CLI, pages): what
    each is for, its fingerprint, notAfter and how far off that is; IdP first."""
    certificates = [("idp_signing", found) for found in idp_certificates(connection)]
    if (own := sp_certificate(connection)) is not None:
        certificates.append(("sp", own))
    return [
        {
            "use": use, "fingerprint_sha256": found.fingerprint, "not_after": found.not_after,
            "days_left": found.days_left(now), "expiry": found.relative(now),
            "expired": found.expired(now),
        }
        for use, found in certificates
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alarm:
    """An active connection whose last valid IdP certificate expires soon or has."""

    connection_id: int
    connection_name: str
    org_id: int
    certificate: Certificate
    threshold: str
    when: str
    """How far off notAfter was when the alarm was raised ("in 6 days")."""

    @property
    def expired(self) -> bool:
        return self.threshold == "expired"


def last_certificate(certificates: list[Certificate]) -> Certificate | None:
    """The certificate that keeps the connection working longest."""
    return max(certificates, key=lambda found: found.not_after, default=None)


def threshold_of(certificate: Certificate, now: datetime) -> str | None:
    """The nearest threshold ``certificate`` has reached at ``now``, if any."""
    if certificate.expired(now):
        return "expired"
    days = certificate.days_left(now)
    return next((name for name, limit in THRESHOLDS if limit and days < limit), None)


def alarm_of(connection: SsoConnection, now: datetime) -> Alarm | None:
    """The connection's alarm at ``now``: only active connections raise one."""
    last = last_certificate(idp_certificates(connection))
    if connection.state != "active" or last is None:
        return None
    threshold = threshold_of(last, now)
    if threshold is None:
        return None
    when = last.relative(now)
    return Alarm(connection.id, connection.name, connection.org_id, last, threshold, when)


def active_alarms(db: Session, now: datetime, org_id: int | None = None) -> list[Alarm]:
    """Every alarm at ``now`` (of one org's connections when ``org_id`` is given)."""
    statement = select(SsoConnection).where(_ACTIVE_SAML).order_by(SsoConnection.id)
    if org_id is not None:
        statement = statement.where(SsoConnection.org_id == org_id)
    connections = db.scalars(statement)
    return [alarm for c in connections if (alarm := alarm_of(c, now)) is not None]


class ExpiryCollector(Collector):
    """``hubgate_sso_certificate_expiry_timestamp_seconds{org, connection}``, read
    from the database at each scrape with one query.

    Any worker may answer ``/metrics``; a gauge kept in process memory would show
    whatever that worker last computed, while the database says the same to all.
    The value is the latest notAfter among the connection's IdP signing
    certificates (past, once all have expired, so ``< time()`` fires). Labels stay
    bounded: connections are created by operators and org admins, not by traffic.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            GAUGE,
            "When the last IdP signing certificate of an active SAML connection expires "
            "(Unix time).",
            labels=["org", "connection"],
        )
        try:
            rows = self._rows()
        except SQLAlchemyError:
            log.warning("certificate expiry gauge: the database did not answer", exc_info=True)
            return
        for org, connection_id, last in rows:
            gauge.add_metric([org, str(connection_id)], last.not_after.timestamp())
        yield gauge

    def _rows(self) -> list[tuple[str, int, Certificate]]:
        with self.database.transaction() as db:
            rows = db.execute(
                select(Org.name, SsoConnection)
                .join(Org, Org.id == SsoConnection.org_id)
                .where(SsoConnection.kind == "saml", SsoConnection.state == "active")
            ).all()
            found = [(org, c.id, last_certificate(idp_certificates(c))) for org, c in rows]
        return [(org, cid, last) for org, cid, last in found if last is not None]


def render(database: Database) -> bytes:
    """The expiry gauge in the text format, on a registry of this scrape alone (the
    collector reads ``database``, which belongs to one app, not to the process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExpiryCollector(database))
    return generate_latest(registry)
