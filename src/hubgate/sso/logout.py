"""Single logout around the protocol code (DESIGN.md §2): which sessions an IdP's
logout message names, ending them, and what a session needs to ask its IdP to
end its own.

A session holds an SSO authentication per org it signed into, and that row keeps
how the IdP named the authentication (:class:`~hubgate.sso.identity.IdpSession`).
A logout from the IdP names a person (SAML NameID, OIDC ``sub``) and maybe a
session (SAML SessionIndex, OIDC ``sid``) *through one connection*: only
authentications made through that connection can match, so one org's IdP can
never end another org's sessions. Sessions live in the shared database, so
ending them here ends them on every instance at once; the SSO authentications
go with them, and with those the SSO freshness basic mode asks for. Personal
tokens are not sessions and stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.audit import Actor
from hubgate.db.models import SsoAuthentication, SsoConnection, WebSession

__all__ = ["Held", "Named", "end_named", "held"]

_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
_MAX_SESSIONS_AUDITED = 50


@dataclass(frozen=True, slots=True)
class Named:
    """What a verified logout message names, through ``connection_id``.

    ``subject`` is the SAML NameID value or the OIDC ``sub``; ``sessions`` the
    SAML SessionIndex values or the OIDC ``sid``. At least one of them is given;
    when both are, a session must match both. ``subject_format`` (SAML) must equal
    the Format the NameID came with, an unspecified Format matching any.
    """

    connection_id: int
    subject: str | None = None
    sessions: tuple[str, ...] = ()
    subject_format: str | None = None

    def __post_init__(self) -> None:
        if self.subject is None and not self.sessions:
            raise ValueError("A logout names a subject, a session, or both.")


def end_named(db: Session, actor: Actor, named: Named, *, reason: str) -> int:
    """End every session that holds an SSO authentication ``named`` names, in the
    caller's transaction; audited with ``reason`` (one event, also when nothing
    matched). Returns how many sessions ended."""
    rows = db.execute(_matching(named)).all()
    chosen = [r for r in rows if _same_format(named.subject_format, r.idp_subject_format)]
    session_ids = sorted({r.session_id for r in chosen})
    if session_ids:
        # The authentications go with their sessions (ON DELETE CASCADE); said
        # here too, so nothing depends on the database enforcing it.
        db.execute(delete(SsoAuthentication).where(SsoAuthentication.session_id.in_(session_ids)))
        db.execute(delete(WebSession).where(WebSession.id.in_(session_ids)))
    org_id = db.scalar(select(SsoConnection.org_id).where(SsoConnection.id == named.connection_id))
    audit.record(
        db, actor, "sso.logout", org_id=org_id, target=f"connection:{named.connection_id}",
        reason=reason, data={
            "sessions_ended": len(session_ids),
            "users": sorted({r.user_id for r in chosen})[:_MAX_SESSIONS_AUDITED],
            "by_session_index": bool(named.sessions),
        },
    )  # fmt: skip
    return len(session_ids)


def _matching(named: Named) -> Select[int, int, str | None]:
    statement = select(
        SsoAuthentication.session_id, SsoAuthentication.user_id,
        SsoAuthentication.idp_subject_format,
    ).where(SsoAuthentication.connection_id == named.connection_id)  # fmt: skip
    if named.subject is not None:
        statement = statement.where(SsoAuthentication.idp_subject == named.subject)
    if named.sessions:
        statement = statement.where(SsoAuthentication.idp_session.in_(named.sessions))
    return statement


def _same_format(asked: str | None, held: str | None) -> bool:
    """SAML core §2.2.2: a NameID names the same person only under the same
    Format; an absent or unspecified Format on either side leaves it open."""
    if asked in (None, _UNSPECIFIED) or held in (None, _UNSPECIFIED):
        return True
    return asked == held


@dataclass(frozen=True, slots=True)
class Held:
    """A session's latest SSO authentication, with what its IdP needs to end the
    IdP's own session: the connection, and how the IdP named the person and the
    session. ``id_token`` is sealed as stored."""

    connection_id: int
    connection_name: str
    kind: str
    org_id: int
    subject: str | None
    subject_format: str | None
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session: str | None
    id_token: str | None


def held(db: Session, session_id: int) -> Held | None:
    """The SSO authentication a sign-out of ``session_id`` asks its IdP to end:
    the latest one (a browser goes to one IdP on its way out), or ``None``."""
    row = db.execute(
        select(
            SsoAuthentication.connection_id, SsoConnection.name.label("connection_name"),
            SsoConnection.kind, SsoAuthentication.org_id,
            SsoAuthentication.idp_subject.label("subject"),
            SsoAuthentication.idp_subject_format.label("subject_format"),
            SsoAuthentication.idp_name_qualifier.label("name_qualifier"),
            SsoAuthentication.idp_sp_name_qualifier.label("sp_name_qualifier"),
            SsoAuthentication.idp_session.label("session"), SsoAuthentication.id_token,
        )
        .join(SsoConnection, SsoConnection.id == SsoAuthentication.connection_id)
        .where(SsoAuthentication.session_id == session_id)
        .order_by(SsoAuthentication.authenticated_at.desc(), SsoAuthentication.id.desc())
        .limit(1)
    ).first()  # fmt: skip
    return None if row is None else Held(**row._mapping)
