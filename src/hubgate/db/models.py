"""The relational model (DESIGN.md §1, §5).

Unique constraints do the work of locks: every invariant that must hold across
instances (one membership per user and org, one default team per org, one
token hash, one short-lived key per purpose) is a constraint here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hubgate.access import ORG_ROLE_NAMES, TEAM_ROLE_NAMES
from hubgate.db.types import UtcDateTime, utcnow

__all__ = [
    "AuditDelivery",
    "AuditEvent",
    "AuditStream",
    "Base",
    "DeploymentRoute",
    "Email",
    "Ephemeral",
    "Invitation",
    "Membership",
    "Org",
    "OrgDomain",
    "OrgSso",
    "RoleMapping",
    "ScimGroup",
    "ScimGroupMember",
    "ScimGroupTeam",
    "ScimToken",
    "ScimUser",
    "ScimUserEmail",
    "SetupLink",
    "SigningKey",
    "OutboxMail",
    "Resource",
    "SsoAuthentication",
    "SsoCertificateNotice",
    "SsoConnection",
    "SsoLink",
    "Team",
    "TeamMapping",
    "TeamMembership",
    "Throttle",
    "Token",
    "TokenUsage",
    "User",
    "WebSession",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# The role names come from hubgate.access, which owns the roles.
ORG_ROLES = ORG_ROLE_NAMES
TEAM_ROLES = TEAM_ROLE_NAMES
SSO_MODES = ("off", "basic", "managed")
# Where a membership's org role, or a team place, came from: set by hand (an
# admin, the CLI, the org's creation) or by the SSO policy. A role or team place
# that a mapping gave is taken back when the IdP stops asserting its value.
GRANT_SOURCES = ("manual", "default", "invitation", "mapping", "scim")
MAIL_STATES = ("pending", "sent", "failed")
STREAM_KINDS = ("webhook", "syslog")
STREAM_ORIGINS = ("settings", "operator", "admin")


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime}


class User(Base):
    """An account. Its id is never reused (SQLite ``AUTOINCREMENT``; PostgreSQL's
    sequences never reuse): a deleted account's id may still stand in one-time
    links and the audit log, and must never name a newer account."""

    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    managed_by_org_id: Mapped[int | None] = mapped_column(
        ForeignKey("orgs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    emails: Mapped[list[Email]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Email.id"
    )


class Email(Base):
    """One address of an account; ids never reused, as for :class:`User`."""

    __tablename__ = "emails"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), unique=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    is_primary: Mapped[bool] = mapped_column(default=False)
    verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="emails")


class WebSession(Base):
    """A browser session; the cookie holds a random id, the row only its hash."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))


class Ephemeral(Base):
    """The shared short-lived store: one-time links, request ids, nonces, seen ids.

    A row is usable once (it is deleted when consumed) and never after
    ``expires_at``; ``(purpose, key_hash)`` is unique across every instance.
    """

    __tablename__ = "ephemeral"
    __table_args__ = (UniqueConstraint("purpose", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Throttle(Base):
    """Failed sign-in counter for one key (an account or a client address)."""

    __tablename__ = "throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer, default=0)


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        _one_of("role", ORG_ROLES, "role"),
        _one_of("role_source", GRANT_SOURCES, "role_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    role_source: Mapped[str] = mapped_column(String(16), default="manual")
    # What gave the role: the matched mapping value ("groups=ml-admins"), the SCIM
    # group, the invitation's inviter; None when set by hand or by default.
    role_detail: Mapped[str | None] = mapped_column(String(256))
    # A role an admin pinned by hand: role mappings leave it until it is unpinned.
    role_pinned: Mapped[bool] = mapped_column(default=False)
    invited_role: Mapped[str | None] = mapped_column(String(16))
    external_collaborator: Mapped[bool] = mapped_column(default=False)
    deactivated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        Index(
            "uq_teams_one_default",
            "org_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMembership(Base):
    __tablename__ = "team_memberships"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        _one_of("role", TEAM_ROLES, "role"),
        _one_of("source", GRANT_SOURCES, "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("org_id", "kind", "name"),
        _one_of("kind", ("model", "dataset", "space", "deployment"), "kind"),
        _one_of("visibility", ("public", "private"), "visibility"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(96))
    visibility: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    creator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentRoute(Base):
    """A deployment reached at a host and/or under a path prefix (hubgate.gate.routes).

    One (host, prefix) pair leads to one deployment across all orgs. NULLs never
    collide in a unique constraint, so the pairs with a missing part have a
    partial unique index each."""

    __tablename__ = "deployment_routes"
    __table_args__ = (
        CheckConstraint("host IS NOT NULL OR path_prefix IS NOT NULL", name="host_or_prefix"),
        UniqueConstraint("host", "path_prefix"),
        Index(
            "uq_deployment_routes_host_only",
            "host",
            unique=True,
            sqlite_where=text("path_prefix IS NULL"),
            postgresql_where=text("path_prefix IS NULL"),
        ),
        Index(
            "uq_deployment_routes_prefix_only",
            "path_prefix",
            unique=True,
            sqlite_where=text("host IS NULL"),
            postgresql_where=text("host IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str | None] = mapped_column(String(253))
    path_prefix: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """An access token: personal (acts as its user, ``user_id``) or a team token
    (acts as its team, ``team_id``; it belongs to no person, so it outlives whoever
    created it — the audit log names them)."""

    __tablename__ = "tokens"
    __table_args__ = (
        _one_of("kind", ("personal", "team"), "kind"),
        CheckConstraint(
            "(kind = 'personal' AND team_id IS NULL AND user_id IS NOT NULL) "
            "OR (kind = 'team' AND team_id IS NOT NULL AND user_id IS NULL)",
            name="kind_team",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class TokenUsage(Base):
    """Calls a token made to one deployment on one day (UTC), as counted by the
    forward-auth gate in memory and added here in batches (:mod:`hubgate.gate.usage`)."""

    __tablename__ = "token_usage"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """An append-only record; the migrations forbid UPDATE and DELETE on it.

    It holds plain ids, not foreign keys, so history outlives what it names.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_at", "org_id", "id"),
        # The sign-in health charts: one org's sign-in events in a window (0015).
        Index("ix_audit_events_org_action_at", "org_id", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    org_id: Mapped[int | None]
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str | None] = mapped_column(String(64))
    trace_id: Mapped[str] = mapped_column(String(32), index=True)
    client_address: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text, default="{}")


class AuditStream(Base):
    """A destination the audit log is streamed to (:mod:`hubgate.streams`): a
    webhook or a syslog server, for one org's events or (``org_id`` NULL, the
    operator's) every event. Delivery state lives here: one claim at a time, in
    order, the next attempt after a failure, and what failed since when."""

    __tablename__ = "audit_streams"
    __table_args__ = (
        _one_of("kind", STREAM_KINDS, "kind"),
        _one_of("origin", STREAM_ORIGINS, "origin"),
        # One stream per setting, however many instances bring them in line at once.
        Index(
            "uq_audit_streams_setting",
            "kind",
            unique=True,
            sqlite_where=text("origin = 'settings'"),
            postgresql_where=text("origin = 'settings'"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str | None] = mapped_column(Text)
    """The webhook's HMAC key, sealed (:mod:`hubgate.sealed`)."""
    origin: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts in a row; zero once a delivery succeeds."""
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_delivered_at: Mapped[datetime | None]
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    """Events dropped, oldest first, while the queue was over its bound."""
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]


class AuditDelivery(Base):
    """One event waiting for one stream, written by a trigger on ``audit_events`` in
    the event's own transaction (migration 0019) and deleted once the destination
    took it."""

    __tablename__ = "audit_deliveries"
    __table_args__ = (Index("ix_audit_deliveries_stream", "stream_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("audit_streams.id", ondelete="CASCADE"))
    event_id: Mapped[int]


class OutboxMail(Base):
    """A message in the transactional outbox: written in the transaction of the
    change that causes it, delivered over SMTP by a sender outside any request.

    ``pending`` rows are claimed by one sender at a time (``claimed_by`` until
    ``claimed_until``), sent, and marked ``sent``; a failed attempt is retried at
    ``next_attempt_at`` with backoff, and after the last one the row is ``failed``.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        _one_of("status", MAIL_STATES, "status"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SsoConnection(Base):
    """An org's link to one identity provider (DESIGN.md §1 "SSO connection").

    ``settings`` holds the protocol's JSON settings (IdP entity id, URLs,
    certificates, attribute names, flags); the SP key pair signs requests and
    decrypts assertions for this connection alone, its private key sealed at rest
    (:mod:`hubgate.sealed`).
    """

    __tablename__ = "sso_connections"
    __table_args__ = (
        _one_of("kind", ("saml", "oidc"), "kind"),
        _one_of("state", ("draft", "verified", "active", "inactive"), "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="draft")
    name: Mapped[str] = mapped_column(String(120))
    settings: Mapped[str] = mapped_column(Text, default="{}")
    sp_private_key: Mapped[str] = mapped_column(Text, default="")
    sp_certificate: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None]


class SamlMetadataSource(Base):
    """Where a SAML connection's IdP metadata is re-read from, and how that went
    (:mod:`hubgate.sso.metadata_refresh`).

    ``etag`` and ``last_modified`` make the next read conditional; ``lease_until``
    lets one instance alone refresh the connection (taken by a conditional UPDATE,
    never held across the network call); ``pending_*`` is an entity id or SSO URL
    change that waits for an admin, ``rejected_*`` the last one an admin rejected
    (not proposed again while the IdP's metadata still names it).
    """

    __tablename__ = "saml_metadata_sources"
    __table_args__ = (_one_of("last_result", ("unchanged", "changed", "failed"), "last_result"),)

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("sso_connections.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(256))
    last_modified: Mapped[str | None] = mapped_column(String(64))
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    last_attempt_at: Mapped[datetime | None]
    last_result: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(64))
    failing_since: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    pending_entity_id: Mapped[str | None] = mapped_column(Text)
    pending_sso_url: Mapped[str | None] = mapped_column(Text)
    rejected_entity_id: Mapped[str | None] = mapped_column(Text)
    rejected_sso_url: Mapped[str | None] = mapped_column(Text)


class SsoCertificateNotice(Base):
    """A certificate-expiry warning sent to an org's admins: one per connection,
    certificate (SHA-256 fingerprint) and threshold, ever. The primary key is what
    lets one instance alone send it (:mod:`hubgate.sso.certificate_expiry`)."""

    __tablename__ = "sso_certificate_notices"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("sso_connections.id", ondelete="CASCADE"), primary_key=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    threshold: Mapped[str] = mapped_column(String(16), primary_key=True)
    not_after: Mapped[datetime]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrgSso(Base):
    """An org's SSO policy (DESIGN.md §1 "SSO mode", "Policy"); no row means SSO off.

    ``enforced`` matters in managed mode only: an operator lifting enforcement
    lets the org's people use their passwords again, under basic mode's rule.
    """

    __tablename__ = "org_sso"
    __table_args__ = (
        _one_of("mode", SSO_MODES, "mode"),
        _one_of("default_role", ORG_ROLES, "default_role"),
        CheckConstraint("session_timeout_seconds BETWEEN 3600 AND 7776000", name="session_timeout"),
    )

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16), default="off")
    optional: Mapped[bool] = mapped_column(default=False)
    enforced: Mapped[bool] = mapped_column(default=True)
    session_timeout_seconds: Mapped[int] = mapped_column(Integer, default=7 * 24 * 3600)
    default_role: Mapped[str] = mapped_column(String(16), default="write")
    default_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # The join link: its key's SHA-256 finds the org, the key itself is kept sealed
    # (:mod:`hubgate.sealed`) so admins can see the link again.
    join_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    join_key_sealed: Mapped[str | None] = mapped_column(Text)
    join_expires_at: Mapped[datetime | None]
    join_rotated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrgDomain(Base):
    """An email domain an org claims; it counts once verified, and a verified
    domain belongs to one org only (the partial unique index)."""

    __tablename__ = "org_domains"
    __table_args__ = (
        UniqueConstraint("org_id", "domain"),
        Index(
            "uq_org_domains_verified",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253), index=True)
    verification_token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[str | None] = mapped_column(String(16))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("sso_connections.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SsoLink(Base):
    """An identity bound to an account: (connection, subject) -> user, for good."""

    __tablename__ = "sso_links"
    __table_args__ = (UniqueConstraint("connection_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("sso_connections.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(1024))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformProvider(Base):
    """A hub-wide sign-in provider for people's own accounts (an OpenID Provider
    by issuer, or GitHub); ``settings`` holds its endpoints and client, the
    client secret sealed at rest (:mod:`hubgate.sealed`)."""

    __tablename__ = "platform_providers"
    __table_args__ = (_one_of("kind", ("oidc", "github"), "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(60))
    settings: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformLink(Base):
    """An own account's identity at a platform provider: (provider, subject) -> user."""

    __tablename__ = "platform_links"
    __table_args__ = (UniqueConstraint("provider_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("platform_providers.id", ondelete="CASCADE")
    )
    subject: Mapped[str] = mapped_column(String(1024))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """One of hubgate's own signing keys (:mod:`hubgate.signing_keys`): the private
    key sealed at rest (:mod:`hubgate.sealed`), the public half as a JWK.

    It signs from ``activated_at`` until ``retired_at``; ``generation`` counts the
    keys ever made, and its uniqueness lets one instance alone make the next."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    generation: Mapped[int] = mapped_column(Integer, unique=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key_sealed: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class SsoAuthentication(Base):
    """A session's SSO authentication for one org; fresh while younger than the
    org's session timeout and the IdP's own session expiry, if it gave one."""

    __tablename__ = "sso_authentications"
    __table_args__ = (
        UniqueConstraint("session_id", "org_id"),
        Index("ix_sso_authentications_user_org", "user_id", "org_id"),
        Index("ix_sso_authentications_idp_subject", "connection_id", "idp_subject"),
        Index("ix_sso_authentications_idp_session", "connection_id", "idp_session"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("sso_connections.id", ondelete="SET NULL")
    )
    authenticated_at: Mapped[datetime]
    idp_expires_at: Mapped[datetime | None]
    # How the IdP names this authentication, for single logout: the SAML NameID
    # (with its Format and qualifiers) or the OIDC ``sub``, and the SAML
    # SessionIndex or the OIDC ``sid``; the id_token (sealed) is the
    # ``id_token_hint`` of an RP-initiated logout.
    idp_subject: Mapped[str | None] = mapped_column(String(1024))
    idp_subject_format: Mapped[str | None] = mapped_column(String(256))
    idp_name_qualifier: Mapped[str | None] = mapped_column(String(256))
    idp_sp_name_qualifier: Mapped[str | None] = mapped_column(String(256))
    idp_session: Mapped[str | None] = mapped_column(String(256))
    id_token: Mapped[str | None] = mapped_column(Text)


class RoleMapping(Base):
    """An IdP attribute value that grants an org role (the most privileged match wins)."""

    __tablename__ = "role_mappings"
    __table_args__ = (
        UniqueConstraint("org_id", "attribute", "value"),
        _one_of("role", ORG_ROLES, "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(256))
    value: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))


class TeamMapping(Base):
    """An IdP attribute value that grants a place in a team (additive)."""

    __tablename__ = "team_mappings"
    __table_args__ = (
        UniqueConstraint("org_id", "attribute", "value", "team_id"),
        _one_of("team_role", TEAM_ROLES, "team_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    attribute: Mapped[str] = mapped_column(String(256))
    value: Mapped[str] = mapped_column(String(256))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    team_role: Mapped[str] = mapped_column(String(16))


class Invitation(Base):
    """An email invited into an org with a role and teams; accepted only by
    signing in through the org's SSO with that email. Its link's key is found by
    its SHA-256 and kept sealed, so admins can pass the link on while it is pending."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("org_id", "email"),
        _one_of("role", ORG_ROLES, "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    teams: Mapped[str] = mapped_column(Text, default="[]")
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    key_sealed: Mapped[str | None] = mapped_column(Text)
    mailed_at: Mapped[datetime | None]


class SetupLink(Base):
    """A one-time link to the setup portal for an org's IT admin (DESIGN.md §1
    "Setup link"); only its SHA-256 is stored. It ends at ``expires_at``, when
    revoked, or once a connection it set up is activated."""

    __tablename__ = "setup_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_why: Mapped[str | None] = mapped_column(String(16))


class ScimToken(Base):
    """A SCIM client's bearer token for one org: shown once, stored hashed."""

    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ScimUser(Base):
    """A SCIM User of an org: the org's membership of one account, as its IdP
    provisions it. ``user_name_key`` (lowercased) is unique within the org, which
    is what SCIM's caseExact=false userName asks for."""

    __tablename__ = "scim_users"
    __table_args__ = (
        UniqueConstraint("org_id", "user_name_key"),
        UniqueConstraint("org_id", "user_id"),
        Index("ix_scim_users_org_external", "org_id", "external_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(256))
    user_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
    given_name: Mapped[str | None] = mapped_column(String(128))
    family_name: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)
    extra: Mapped[str] = mapped_column(Text, default="{}")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimUserEmail(Base):
    __tablename__ = "scim_user_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    scim_user_id: Mapped[str] = mapped_column(
        ForeignKey("scim_users.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[str] = mapped_column(String(254))
    value_key: Mapped[str] = mapped_column(String(254), index=True)
    type: Mapped[str | None] = mapped_column(String(32))
    primary: Mapped[bool] = mapped_column(default=False)


class ScimGroup(Base):
    """A SCIM Group of an org; linked to teams (``ScimGroupTeam``) it makes them
    SCIM-managed, and its display name is a ``groups`` value for role mappings."""

    __tablename__ = "scim_groups"
    __table_args__ = (UniqueConstraint("org_id", "display_name_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(256))
    display_name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScimGroupMember(Base):
    __tablename__ = "scim_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True
    )
    scim_user_id: Mapped[str] = mapped_column(
        ForeignKey("scim_users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ScimGroupTeam(Base):
    """A SCIM Group linked to a team with a team role."""

    __tablename__ = "scim_group_teams"
    __table_args__ = (_one_of("team_role", TEAM_ROLES, "team_role"),)

    group_id: Mapped[str] = mapped_column(
        ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    team_role: Mapped[str] = mapped_column(String(16))


class GateChange(Base):
    """The change sequence (SQLite: one row, ``id`` 1; PostgreSQL: shards ``id`` 0 to
    63, the sequence their sum): triggers bump it whenever a row that can alter an
    access decision changes (:mod:`hubgate.db.change_triggers`)."""

    __tablename__ = "gate_changes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
