"""Whose sign-in an org's enforced managed mode takes (DESIGN.md §1 "managed"):
an address in its verified domains, its members (external collaborators
excepted) and the accounts it manages sign in through its IdP, never with a
password.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hubgate.accounts.emails import split_email
from hubgate.db.models import Membership, Org, OrgDomain, OrgSso, User
from hubgate.errors import Forbidden, HubgateError
from hubgate.sso.policy import SsoMode

__all__ = ["password_refusal", "sso_enforced"]


def password_refusal(db: Session, address: str, user: User) -> HubgateError | None:
    """Why ``user`` may not sign in with a password, if so (see :func:`sso_enforced`).
    Asked after the password checked out, so it tells nothing to someone who does
    not know it."""
    return sso_enforced(db, address, user)


def sso_enforced(db: Session, address: str, user: User | None) -> Forbidden | None:
    """An org in managed mode (enforced) that signs this person in through its IdP:
    it owns the email's domain, counts ``user`` as a member (external
    collaborators excepted) or manages the account. With ``user`` ``None`` only
    the domain counts (nothing about any account is asked)."""
    domain = split_email(address)[1]
    by_domain = select(OrgDomain.org_id).where(
        OrgDomain.domain == domain, OrgDomain.verified_at.is_not(None)
    )
    orgs = by_domain if user is None else by_domain.union(*_orgs_of_account(user))
    statement = (
        select(Org.name, Org.display_name)
        .join(OrgSso, OrgSso.org_id == Org.id)
        .where(
            OrgSso.mode == SsoMode.MANAGED.value,
            OrgSso.enforced.is_(True),
            Org.id.in_(orgs),
        )  # fmt: skip
        .order_by(Org.name)
    )
    found = db.execute(statement.limit(1)).first()
    if found is None:
        return None
    return Forbidden(
        f"{found.display_name} signs you in through its identity provider: use single sign-on.",
        code="sso_enforced", sso_url=f"/sso/{found.name}/start",
    )  # fmt: skip


def _orgs_of_account(user: User) -> tuple[Select[int], Select[int]]:
    """The orgs that count ``user`` as one of theirs: a membership (external
    collaborators excepted) or ownership of the account."""
    by_membership = select(Membership.org_id).where(
        Membership.user_id == user.id, Membership.external_collaborator.is_(False),
        Membership.deactivated_at.is_(None),
    )  # fmt: skip
    return by_membership, select(Org.id).where(Org.id == user.managed_by_org_id)
