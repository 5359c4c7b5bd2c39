"""What the ``/api/v1`` routers share: the CSRF check, the router itself, lookups."""

from __future__ import annotations

from datetime import date
from enum import Enum

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from hubgate.accounts import tokens, users
from hubgate.accounts.emails import normalize_email
from hubgate.db.models import Token, User
from hubgate.errors import NotFound, Unauthenticated
from hubgate.gate.usage_report import TokenUsageReport
from hubgate.principals import Credential
from hubgate.web import csrf, schemas
from hubgate.web.context import (
    CurrentCredential,
    Rt,
)


def api_csrf(request: Request, rt: Rt, credential: CurrentCredential) -> None:
    """Cookie-authenticated changes must carry the CSRF token in ``X-CSRF-Token``."""
    if request.method in csrf.SAFE_METHODS:
        return
    if credential.session_id is not None:
        csrf.verify(request, rt, request.headers.get(csrf.HEADER))


def api_router(path: str = "", tags: list[str | Enum] | None = None) -> APIRouter:
    """A router under ``/api/v1{path}`` whose changes by cookie carry the CSRF token."""
    return APIRouter(prefix=f"/api/v1{path}", tags=tags, dependencies=[Depends(api_csrf)])


NO_NUL = r"^[^\x00]*$"


def user_by_id(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such person.")
    return user


def user_by_email(db: Session, address: str) -> User:
    user = users.find_by_email(db, normalize_email(address))
    if user is None:
        raise NotFound("No account has that email; ask them to sign up first.")
    return user


def token_public(row: Token, team: str | None = None) -> schemas.TokenPublic:
    return schemas.TokenPublic(
        id=row.id, kind=row.kind, name=row.name, hint=row.hint, scopes=row.scopes.split(),
        team=team, created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )  # fmt: skip


def usage_public(report: TokenUsageReport, day: date) -> schemas.TokenUsagePublic:
    return schemas.TokenUsagePublic(
        token_id=report.token_id, day=day, last_used_at=report.last_used_at,
        calls_today=report.today, calls_7_days=report.last_7_days,
        calls_30_days=report.last_30_days,
        deployments=[
            schemas.DeploymentUsagePublic(
                org=d.org, deployment=d.deployment, calls_today=d.today,
                calls_7_days=d.last_7_days, calls_30_days=d.last_30_days,
            )  # fmt: skip
            for d in report.deployments
        ],
    )  # fmt: skip


def created(new: tokens.NewToken, team: str | None = None) -> schemas.TokenCreated:
    return schemas.TokenCreated(**token_public(new.row, team).model_dump(), token=new.secret)


def require_session(credential: Credential) -> None:
    """Tokens are minted from a signed-in browser session, not by other tokens."""
    if credential.session_id is None:
        raise Unauthenticated("Create tokens from a signed-in session.", code="session_required")
