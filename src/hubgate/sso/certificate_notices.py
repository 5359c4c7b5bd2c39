"""Warning an org's admins, once, that an IdP certificate expires soon or has.

A background pass (:func:`hubgate.jobs.warn_certificates`) finds the alarms
(:func:`hubgate.sso.certificate_expiry.active_alarms`) and, for each, writes in one
transaction the notice row, a mail per admin to the outbox and an audit event. The
notice's primary key (connection, fingerprint, threshold) decides: every instance
may run the pass, the first commit wins, and the others' transactions fail on the
key and roll back with their mails. Nothing here touches the network.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import OrgRole
from hubgate.accounts.mail import Mailer
from hubgate.audit import Actor
from hubgate.db.engine import Database
from hubgate.db.models import Email, Membership, Org, SsoCertificateNotice
from hubgate.sso.certificate_expiry import Alarm, active_alarms

__all__ = ["admin_addresses", "send_due"]


def send_due(database: Database, mailer: Mailer, base_url: str, now: datetime) -> int:
    """Send every notice due at ``now`` that no instance has sent; how many this one sent."""
    with database.transaction() as db:
        alarms = active_alarms(db, now)
    return sum(_send_once(database, mailer, base_url, alarm, now) for alarm in alarms)


def _send_once(
    database: Database, mailer: Mailer, base_url: str, alarm: Alarm, now: datetime
) -> bool:
    """One notice in one transaction; False when it was sent already (by anyone)."""
    try:
        with database.transaction() as db:
            if _already_sent(db, alarm):
                return False
            db.add(
                SsoCertificateNotice(
                    connection_id=alarm.connection_id, fingerprint=alarm.certificate.fingerprint,
                    threshold=alarm.threshold, not_after=alarm.certificate.not_after, sent_at=now,
                )
            )  # fmt: skip
            db.flush()
            _notify(db, mailer, base_url, alarm, now)
    except IntegrityError:
        return False  # another instance committed the same notice first
    return True


def _already_sent(db: Session, alarm: Alarm) -> bool:
    key = (alarm.connection_id, alarm.certificate.fingerprint, alarm.threshold)
    return db.get(SsoCertificateNotice, key) is not None


def _notify(db: Session, mailer: Mailer, base_url: str, alarm: Alarm, now: datetime) -> None:
    org_name = db.scalars(select(Org.name).where(Org.id == alarm.org_id)).one()
    subject, body = _message(org_name, base_url, alarm)
    for address in admin_addresses(db, alarm.org_id):
        mailer.send(db, address, subject, body)
    audit.record(
        db, Actor.system("certificates"),
        "sso.certificate_expired" if alarm.expired else "sso.certificate_expiring",
        org_id=alarm.org_id, target=f"connection:{alarm.connection_id}",
        data={
            "fingerprint": alarm.certificate.fingerprint, "threshold": alarm.threshold,
            "not_after": alarm.certificate.not_after.isoformat(),
        },
    )  # fmt: skip


def admin_addresses(db: Session, org_id: int) -> list[str]:
    """The verified primary addresses of the org's active admins."""
    statement = (
        select(Email.address)
        .join(Membership, Membership.user_id == Email.user_id)
        .where(
            Membership.org_id == org_id,
            Membership.role == OrgRole.ADMIN.label,
            Membership.deactivated_at.is_(None),
            Email.is_primary,
            Email.verified_at.is_not(None),
        )  # fmt: skip
        .order_by(Email.address)
    )
    return list(db.scalars(statement))


def _message(org_name: str, base_url: str, alarm: Alarm) -> tuple[str, str]:
    """Subject and plain-text body: what broke or will, when, and where to fix it."""
    certificate = alarm.certificate
    state = f"expired ({alarm.when})" if alarm.expired else f"expires {alarm.when}"
    subject = f"{org_name}: the IdP certificate of SSO connection {alarm.connection_name} {state}"
    body = (
        f"The last valid signing certificate of the identity provider of the SSO "
        f"connection {alarm.connection_name} (id {alarm.connection_id}) of {org_name} "
        f"{state}: not after {certificate.not_after:%Y-%m-%d %H:%M UTC}.\n"
        f"Fingerprint (SHA-256): {certificate.fingerprint}\n\n"
        f"Once it has expired, nobody can sign in through this connection. Ask the "
        f"identity provider for its new certificate and add it (or upload its new "
        f"metadata) on {base_url.rstrip('/')}/{org_name}/sso before then.\n"
    )
    return subject[:200], body
