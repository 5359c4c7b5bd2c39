"""``/api/v1/me/tokens``: personal access tokens, minted from a signed-in session."""

from __future__ import annotations

from fastapi import Request, Response

from hubgate.accounts import tokens
from hubgate.gate.usage_report import usage_of
from hubgate.orgs import queries
from hubgate.web import schemas
from hubgate.web.api.common import (
    api_router,
    token_public,
    usage_public,
)
from hubgate.web.api.common import (
    created as _created,
)
from hubgate.web.api.common import (
    require_session as _require_session,
)
from hubgate.web.context import (
    CurrentCredential,
    CurrentUser,
    Rt,
    actor_of,
)
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = api_router()


@router.get("/me/tokens", response_model=list[schemas.TokenPublic], tags=["tokens"])
def list_tokens(rt: Rt, user: CurrentUser) -> list[schemas.TokenPublic]:
    with rt.db.transaction() as db:
        return [token_public(t) for t in queries.personal_tokens(db, user.id)]


@router.post("/me/tokens", status_code=201, response_model=schemas.TokenCreated, tags=["tokens"])
def create_token(
    body: schemas.TokenCreate,
    request: Request,
    rt: Rt,
    user: CurrentUser,
    credential: CurrentCredential,
) -> schemas.TokenCreated:
    _require_session(credential)
    with rt.db.transaction() as db:
        actor = actor_of(request, rt, credential)
        return _created(
            tokens.create_personal(
                db, actor, user.id, body.name, body.scopes, body.expires_in_days, rt.now()
            )
        )


@router.get("/me/tokens/{token_id}/usage", response_model=schemas.TokenUsagePublic, tags=["tokens"])
def token_usage(token_id: RowId, rt: Rt, user: CurrentUser) -> schemas.TokenUsagePublic:
    """Calls to deployments by one of your tokens: today, in 7 and 30 days, per deployment."""
    today = rt.now().date()
    with rt.db.transaction() as db:
        row = tokens.personal_token(db, user.id, token_id)
        return usage_public(usage_of(db, [row], today)[row.id], today)


@router.delete("/me/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_token(
    token_id: RowId, request: Request, rt: Rt, user: CurrentUser, credential: CurrentCredential
) -> Response:
    with rt.db.transaction() as db:
        tokens.revoke_personal(db, actor_of(request, rt, credential), user.id, token_id, rt.now())
    return Response(status_code=204)
