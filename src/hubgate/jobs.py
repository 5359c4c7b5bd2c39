"""What each instance does in the background (:class:`hubgate.worker.Worker`).

Add a job here: a name, a callable that does one pass of its work in short
transactions of its own, and how often to run it.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from hubgate import signing_keys
from hubgate.accounts import users
from hubgate.audit import Actor
from hubgate.mail.sender import build_sender, instance_id
from hubgate.runtime import Runtime
from hubgate.sso import certificate_notices, metadata_refresh
from hubgate.streams.deliver import Streamer
from hubgate.worker import Job

__all__ = [
    "CERTIFICATES_SECONDS",
    "KEYS_SECONDS",
    "MAIL_POLL_SECONDS",
    "METADATA_SECONDS",
    "PURGE_SECONDS",
    "STREAM_MAINTAIN_SECONDS",
    "STREAM_POLL_SECONDS",
    "background_jobs",
    "purge_unverified",
    "turn_signing_keys",
    "warn_certificates",
]

MAIL_POLL_SECONDS = 5.0
MAIL_BATCHES_PER_PASS = 10
PURGE_SECONDS = 3600.0
KEYS_SECONDS = 300.0
CERTIFICATES_SECONDS = 3600.0
METADATA_SECONDS = 300.0
"""How often an instance looks for connections whose metadata is due (each is
due every ``HUBGATE_METADATA_REFRESH_HOURS``)."""
STREAM_POLL_SECONDS = 2.0
STREAM_MAINTAIN_SECONDS = 60.0


def background_jobs(rt: Runtime) -> list[Job]:
    """The jobs of an instance of ``rt``: the expiry of unverified accounts, the
    warnings of expiring IdP certificates, the refresh of SAML metadata, the audit
    streams' delivery, the mail sender when ``HUBGATE_SMTP_URL`` is set, and the
    rotation of signing keys when ``HUBGATE_UPSTREAM_ASSERTION`` is on."""
    jobs = [
        Job("purge-unverified", partial(purge_unverified, rt), every=PURGE_SECONDS),
        Job("certificates", partial(warn_certificates, rt), every=CERTIFICATES_SECONDS),
        Job("metadata-refresh", partial(metadata_refresh.refresh_due, rt), every=METADATA_SECONDS),
    ]
    streamer = Streamer(rt, instance_id())
    jobs.append(Job("audit-streams-setup", streamer.maintain, every=STREAM_MAINTAIN_SECONDS))
    jobs.append(Job("audit-streams", streamer.run, every=STREAM_POLL_SECONDS))
    if rt.settings.upstream_assertion:
        jobs.append(Job("signing-keys", partial(turn_signing_keys, rt), every=KEYS_SECONDS))
    sender = build_sender(rt)
    if sender is not None:
        send = partial(sender.send_due, max_batches=MAIL_BATCHES_PER_PASS)
        jobs.append(Job("mail", send, every=MAIL_POLL_SECONDS))
    return jobs


def purge_unverified(rt: Runtime) -> int:
    """Unverified accounts older than ``HUBGATE_UNVERIFIED_ACCOUNT_DAYS`` go, and
    their addresses are free again (:func:`hubgate.accounts.users.purge_unverified`)."""
    with rt.db.transaction() as db:
        days = rt.settings.unverified_account_days
        return users.purge_unverified(db, Actor.system("expiry"), rt.now(), days)


def turn_signing_keys(rt: Runtime) -> bool:
    """Rotate the signing key once it has signed ``HUBGATE_SIGNING_KEY_ROTATION_DAYS``
    and delete retired keys whose assertions have all expired; True if it rotated.
    Every instance runs this, and the key store lets one alone make each key."""
    every = timedelta(days=rt.settings.signing_key_rotation_days)
    rotated = signing_keys.rotate_if_due(rt.db, rt.sealer, rt.now(), every)
    signing_keys.prune(rt.db, rt.now())
    return rotated


def warn_certificates(rt: Runtime) -> int:
    """Mail the admins of each org whose active SAML connection's last IdP
    certificate expires within 30 or 7 days, or has; once per certificate and
    threshold across every instance (:mod:`hubgate.sso.certificate_notices`)."""
    return certificate_notices.send_due(rt.db, rt.mailer, rt.settings.base_url, rt.now())
