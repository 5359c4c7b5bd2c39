"""The org's role mappings, set with their effect on the members its IdP provisions
by SCIM: their roles follow their SCIM groups' names, so a change reaches them at
once (the others get it at their next SSO sign-in, :mod:`hubgate.sso.login`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from hubgate.access import Principal
from hubgate.audit import Actor
from hubgate.db.models import Org
from hubgate.provisioning import group_roles
from hubgate.sso import mappings

__all__ = ["set_role_mappings"]


def set_role_mappings(
    db: Session, actor: Actor, principal: Principal, org: Org, rules: Sequence[mappings.RoleRule]
) -> None:
    """:func:`hubgate.sso.mappings.set_role_mappings`, then each SCIM member in a
    Group gets the role the new mappings give (:func:`group_roles.recompute`)."""
    mappings.set_role_mappings(db, actor, principal, org, rules)
    group_roles.recompute(db, actor, org, group_roles.grouped_users(db, org))
