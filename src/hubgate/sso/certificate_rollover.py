"""IdP signing certificate rollover without downtime.

When the IdP's metadata stops listing a certificate, a refresh
(:mod:`hubgate.sso.metadata_refresh`) does not drop it: it goes on the
connection's retiring list (``settings["idp_certificates_retiring"]``) and still
verifies. The first sign-in verified by a certificate not on that list proves the
IdP signs with its replacement; then the retiring ones are dropped. The check
reads only the settings the sign-in already loaded, so a sign-in with nothing
retiring pays nothing for it.
"""

from __future__ import annotations

import json

from sqlalchemy import update
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.sso.connections import EndpointSource, stored_settings
from hubgate.sso.saml.keys import certificate_fingerprint

__all__ = ["RETIRING", "signed_by"]

RETIRING = "idp_certificates_retiring"


def signed_by(
    db: Session, actor: Actor, connection: EndpointSource, certificate: str | None
) -> None:
    """A response to ``connection`` was verified by ``certificate``: if it is not a
    retiring one, retire those (audited). The UPDATE names the settings it read, so
    a refresh that changed them meanwhile wins and the next sign-in retires."""
    settings = stored_settings(connection)
    retiring: list[str] = settings.get(RETIRING) or []
    if certificate is None or not retiring or certificate in retiring:
        return
    settings["idp_certificates"] = [c for c in settings["idp_certificates"] if c not in retiring]
    settings[RETIRING] = []
    retired = db.execute(
        update(SsoConnection)
        .where(SsoConnection.id == connection.id, SsoConnection.settings == connection.settings)
        .values(settings=json.dumps(settings))
        .returning(SsoConnection.id)
    ).first()
    if retired is not None:
        audit.record(
            db, actor, "sso.certificates_retired", org_id=connection.org_id,
            target=f"connection:{connection.id}",
            data={"retired": [certificate_fingerprint(c) for c in retiring],
                  "verified_by": certificate_fingerprint(certificate)},
        )  # fmt: skip
