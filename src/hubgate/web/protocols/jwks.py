"""``GET /.well-known/jwks.json``: hubgate's own public keys (RFC 7517 §5), with
which model servers verify the ``X-Hubgate-Assertion`` of forward-auth
(:mod:`hubgate.gate.assertion`, :mod:`hubgate.upstream`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hubgate.signing_keys import published_jwks
from hubgate.web.context import Rt

__all__ = ["CACHE_SECONDS", "router"]

router = APIRouter(tags=["forward-auth"])
CACHE_SECONDS = 300
"""Verifiers may keep the set this long: a new key is published twice as long
before it signs (:data:`hubgate.signing_keys.PUBLISH_AHEAD`)."""


@router.get("/.well-known/jwks.json")
def jwks(rt: Rt) -> JSONResponse:
    """The keys that sign assertions now or soon, and those whose assertions may
    still be alive; an empty set until the first assertion is minted."""
    with rt.db.transaction() as db:
        document = published_jwks(db, rt.now())
    return JSONResponse(
        document,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={CACHE_SECONDS}"},
    )
