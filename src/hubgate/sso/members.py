"""What an org's SSO policy says of one member: an external collaborator signs in
without SSO (DESIGN.md §1 "external collaborators"), and an admin may end a
member's SSO authentications for the org.

Every function runs in the caller's transaction and never commits; every change
is audited.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.accounts.emails import split_email
from hubgate.audit import Actor
from hubgate.db.models import Membership, Org, OrgDomain, SsoAuthentication, User, WebSession
from hubgate.errors import Conflict, NotFound
from hubgate.principals import require

__all__ = ["end_org_sessions", "set_collaborator"]


def set_collaborator(
    db: Session, actor: Actor, principal: Principal, org: Org, user: User, external: bool
) -> Membership:
    """Name a member outside the org's domains an external collaborator (no SSO
    needed, still bound by roles and teams), or take that back."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    member = db.scalars(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    ).first()
    if member is None:
        raise NotFound("That person is not a member of this organization.")
    if external and _in_org_domains(db, org.id, user):
        raise Conflict(
            "People with an email in the organization's domains sign in through SSO.",
            code="collaborator_in_domain",
        )
    member.external_collaborator = external
    audit.record(
        db, actor, "member.collaborator_set", org_id=org.id,
        target=user.emails[0].address if user.emails else f"user:{user.id}",
        data={"external": external},
    )  # fmt: skip
    return member


def _in_org_domains(db: Session, org_id: int, user: User) -> bool:
    domains = {split_email(e.address)[1] for e in user.emails}
    statement = select(OrgDomain.id).where(
        OrgDomain.org_id == org_id, OrgDomain.verified_at.is_not(None),
        OrgDomain.domain.in_(domains),
    )  # fmt: skip
    return db.scalar(statement.limit(1)) is not None


def end_org_sessions(db: Session, actor: Actor, principal: Principal, org: Org, user: User) -> int:
    """End a member's SSO authentications for the org now; an account the org
    manages loses its sessions altogether. Returns how many were ended."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    ended = db.execute(
        delete(SsoAuthentication).where(
            SsoAuthentication.user_id == user.id, SsoAuthentication.org_id == org.id
        )
    )
    count = int(getattr(ended, "rowcount", 0) or 0)
    if user.managed_by_org_id == org.id:
        gone = db.execute(delete(WebSession).where(WebSession.user_id == user.id))
        count += int(getattr(gone, "rowcount", 0) or 0)
    audit.record(
        db, actor, "member.sessions_ended", org_id=org.id,
        target=user.emails[0].address if user.emails else f"user:{user.id}",
        data={"ended": count},
    )  # fmt: skip
    return count
