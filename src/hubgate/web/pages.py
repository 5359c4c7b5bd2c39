"""Server-rendered pages (Jinja2). Forms post back with a CSRF token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hubgate.web import csrf
from hubgate.web.context import CurrentCredential, Rt

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)


def render(
    request: Request, rt: Any, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """Render ``template`` with the CSRF token; sets the browser's CSRF cookie if new."""
    token = csrf.token_for(request, rt)
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, template, {"csrf_token": token, **context}, status_code=status
    )
    csrf.attach_cookie(request, response, rt)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, rt: Rt, credential: CurrentCredential) -> HTMLResponse:
    return render(request, rt, "home.html", {"credential": credential})
