"""The audit page's streams (org admins): add a webhook or syslog stream (a
webhook's secret is shown once, on the page that answers the form) and remove one.
The list, with each stream's health, is on the audit page itself."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, Request
from fastapi.responses import Response

from hubgate.streams import manage
from hubgate.web.context import Rt, actor_of
from hubgate.web.pages.kit import (
    FORM_ERRORS,
    SignedIn,
    org_context,
    org_scope,
    page_router,
    render,
    see_other,
)
from hubgate.web.schemas import RowId

__all__ = ["router"]

router = page_router()


@router.post("/{org}/audit/streams")
def add_stream(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    kind: Annotated[Literal["webhook", "syslog"], Form()],
    url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            actor = actor_of(request, rt, credential)
            status, secret = manage.create_stream(db, rt, actor, principal, found, kind, url)
            context = org_context(found, principal, "audit")
    except FORM_ERRORS as exc:
        with rt.db.transaction() as db:
            found, principal = org_scope(db, credential, org)
            context = org_context(found, principal, "audit")
        context |= {"error": exc.message, "stream": None, "secret": None}
        return render(request, rt, "audit_stream_added.html", context, exc.status)
    context |= {"error": None, "stream": status, "secret": secret}
    return render(request, rt, "audit_stream_added.html", context)


@router.post("/{org}/audit/streams/{stream_id}/remove")
def remove_stream(
    org: str, stream_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        manage.remove_stream(db, actor_of(request, rt, credential), principal, found, stream_id)
    return see_other(f"/{org}/audit")
