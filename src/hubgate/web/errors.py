"""One place that turns errors into responses: JSON for the API and forward-auth,
an HTML page for browsers."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hubgate import audit
from hubgate.db.models import Org
from hubgate.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HubgateError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
)
from hubgate.principals import ANONYMOUS
from hubgate.web import csrf
from hubgate.web.context import actor_of, trace_id
from hubgate.web.pages.kit import viewer
from hubgate.web.threads import on_request_thread

__all__ = ["install"]

log = logging.getLogger("hubgate.web")
# The framework's own refusals (no route, wrong method, ...); any other status is a 400.
_HTTP_ERRORS: dict[int, type[HubgateError]] = {
    400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    413: PayloadTooLarge, 415: UnsupportedMediaType,
}  # fmt: skip


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/auth/", "/scim/", "/healthz", "/metrics")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _sso_start(request: Request, error: HubgateError) -> None:
    """``sso_required`` names the org's id; the caller gets the URL that starts SSO."""
    org_id = error.details.pop("org_id", None)
    if error.code != "sso_required" or not isinstance(org_id, int):
        return
    runtime = request.app.state.runtime
    with runtime.db.transaction() as db:
        org = db.get(Org, org_id)
    if org is not None:
        next_path = quote(request.url.path if _wants_html(request) else f"/{org.name}")
        error.details["sso_url"] = runtime.url(f"/sso/{org.name}/start?next={next_path}")
        error.message = f"{org.display_name} requires a recent single sign-on."


def _scim_error(error: HubgateError, headers: dict[str, str]) -> Response:
    """RFC 7644 §3.12: a SCIM Error document, whatever refused the request."""
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(error.status), "detail": error.message,
    }  # fmt: skip
    scim_type = getattr(error, "scim_type", None)
    if scim_type is None and error.status == 400:
        scim_type = "invalidValue"
    if scim_type:
        body["scimType"] = scim_type
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="hubgate SCIM"'
    return Response(
        json.dumps(body), error.status, headers=headers, media_type="application/scim+json"
    )


def respond(request: Request, error: HubgateError) -> Response:
    _sso_start(request, error)
    trace = trace_id(request)
    headers = {"X-Trace-Id": trace}
    retry_after = error.details.get("retry_after")
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if request.url.path.startswith("/scim/"):
        return _scim_error(error, headers)
    if _wants_html(request):
        templates = request.app.state.templates
        runtime = request.app.state.runtime
        context = {
            "error": error, "trace_id": trace, "status": error.status,
            "viewer": viewer(request), "csrf_token": csrf.token_for(request, runtime),
        }  # fmt: skip
        page = templates.TemplateResponse(
            request, "error.html", context, status_code=error.status, headers=headers
        )
        csrf.attach_cookie(request, page, runtime)
        return page  # type: ignore[no-any-return]
    body: dict[str, Any] = {"error": error.code, "message": error.message, "trace_id": trace}
    extra = {k: v for k, v in error.details.items() if k != "retry_after"}
    if extra:
        body["details"] = extra
    return JSONResponse(body, status_code=error.status, headers=headers)


async def _hubgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubgateError)
    if exc.to_audit:
        await on_request_thread(_audit_refusal, request, exc)
    return respond(request, exc)


def _audit_refusal(request: Request, error: HubgateError) -> None:
    runtime = request.app.state.runtime
    credential = getattr(request.state, "credential", ANONYMOUS)
    with runtime.db.transaction() as db:
        actor = actor_of(request, runtime, credential)
        audit.record(
            db, actor, "request.refused", org_id=error.audit_org, target=request.url.path,
            reason=error.code,
        )  # fmt: skip


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(e) for e in exc.errors()][:20]
    json_invalid = any(p["type"] == "json_invalid" for p in problems)
    message = "The body is not valid JSON." if json_invalid else "Some fields are not valid."
    return respond(request, BadRequest(message, problems=problems))


def _problem(error: Any) -> dict[str, str]:
    location = ".".join(str(part) for part in error.get("loc", ()))
    return {"field": location, "type": str(error.get("type")), "message": str(error.get("msg"))}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_ERRORS.get(exc.status_code, BadRequest)
    return respond(request, kind(str(exc.detail)))


async def _integrity_error(request: Request, exc: Exception) -> Response:
    log.info("integrity error answered as 409: %s", exc)
    return respond(request, Conflict())


async def _data_error(request: Request, exc: Exception) -> Response:
    """A value the database cannot store that validation let through: refuse it.

    Inputs are validated at the edges; this keeps a gap there a 400, not a 500."""
    log.warning("database refused a value: %s", exc)
    return respond(request, BadRequest("A value in the request cannot be stored."))


async def _database_busy(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    return respond(request, ServiceUnavailable())


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubgateError, _hubgate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _database_busy)
