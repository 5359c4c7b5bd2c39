"""A connection's certificates: the IdP's signing certificates (any listed one
verifies, so they rotate without downtime) and hubgate's own SP key pair."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import BadRequest
from hubgate.principals import require
from hubgate.runtime import Runtime
from hubgate.sso.connections import stored_settings
from hubgate.sso.saml.keys import certificate_expiry, new_key_pair

__all__ = ["add_certificate", "rotate_sp_key"]


def add_certificate(
    db: Session, actor: Actor, principal: Principal, connection: SsoConnection, pem: str
) -> None:
    """Add an IdP signing certificate (rotation: any listed certificate verifies)."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    if certificate_expiry(pem) is None:
        raise BadRequest("That is not a PEM certificate.", code="certificate_invalid")
    settings = stored_settings(connection)
    settings["idp_certificates"] = list(dict.fromkeys([*settings["idp_certificates"], pem]))
    connection.settings = json.dumps(settings)
    audit.record(
        db, actor, "sso.certificate_added", org_id=connection.org_id,
        target=f"connection:{connection.id}",
    )  # fmt: skip


def rotate_sp_key(
    db: Session, rt: Runtime, actor: Actor, principal: Principal, connection: SsoConnection
) -> None:
    """A new SP key pair; the IdP must fetch the SP metadata again."""
    require(principal, Action.ADMIN, OrgTarget(connection.org_id))
    key, connection.sp_certificate = new_key_pair("hubgate", rt.now())
    connection.sp_private_key = rt.sealer.seal(key)
    audit.record(
        db, actor, "sso.sp_key_rotated", org_id=connection.org_id,
        target=f"connection:{connection.id}",
    )  # fmt: skip
