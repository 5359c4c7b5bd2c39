"""The public key of an OIDC connection, for providers that authenticate
hubgate with ``private_key_jwt``: the client's ``jwks_uri``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hubgate.errors import NotFound
from hubgate.sso import connections
from hubgate.sso.oidc.client_keys import public_jwks
from hubgate.sso.states import ConnectionKind
from hubgate.web.context import Rt
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = APIRouter(tags=["sso"])
_CACHE = "public, max-age=300"


@router.get("/sso/oidc/{connection_id}/jwks")
def oidc_jwks(connection_id: RowId, rt: Rt) -> JSONResponse:
    """The connection's RSA public key as a JWK Set (RFC 7517 §5)."""
    with rt.db.transaction() as db:
        connection = connections.get(db, connection_id)
        if connection.kind != ConnectionKind.OIDC:
            raise NotFound("No such OIDC connection.")
        certificate = connection.sp_certificate
    document: dict[str, Any] = public_jwks(certificate)
    return JSONResponse(
        document, media_type="application/jwk-set+json", headers={"Cache-Control": _CACHE}
    )
