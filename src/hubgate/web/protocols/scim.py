"""SCIM 2.0 endpoints ``/scim/v2/{org}/...`` (RFC 7644 §3): bearer-token auth per
org, ``application/scim+json`` in and out, ETags and If-Match, and thin routes onto
:mod:`hubgate.provisioning` (the store) and :mod:`hubgate.scim` (the documents). Errors
are SCIM Error documents (``web/errors.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from anyio import CapacityLimiter
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from scim2_models import (
    Context,
    EnterpriseUser,
    Group,
    ResponseParameters,
    SearchRequest,
    User,
)
from sqlalchemy.orm import Session

from hubgate import bounded_json
from hubgate.audit import Actor
from hubgate.db.models import Org
from hubgate.provisioning import groups, queries, tokens, users
from hubgate.runtime import Runtime
from hubgate.scim import discovery, documents
from hubgate.scim.documents import GroupRecord, UserRecord
from hubgate.scim.errors import InvalidSyntax, InvalidValue, ScimNotFound
from hubgate.web.context import Rt, client_address, trace_id
from hubgate.web.threads import on_request_thread

__all__ = ["MEDIA_TYPE", "router"]

MEDIA_TYPE = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
router = APIRouter(prefix="/scim/v2/{org}", include_in_schema=False)
Text = Annotated[str | None, Query(max_length=4096)]
_JSON_TYPES = ("application/scim+json", "application/json")
# Two SCIM writes of one process, each in its own thread, only trade the GIL (and
# on SQLite the one write lock) back and forth: bench/scim.py created a fifth fewer
# Users that way than one at a time.
_ONE_AT_A_TIME = CapacityLimiter(1)


def _answer(body: Any, status: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag else {}
    return Response(json.dumps(body), status, headers=headers, media_type=MEDIA_TYPE)


def _body(raw: bytes, content_type: str, max_bytes: int) -> object:
    if content_type and content_type.split(";", maxsplit=1)[0].strip().lower() not in _JSON_TYPES:
        raise InvalidSyntax("Send application/scim+json.")
    try:
        return bounded_json.loads(raw, max_bytes=max_bytes)
    except bounded_json.JsonRefused as exc:
        raise InvalidSyntax(f"The body is refused: {exc.message}") from exc


class Call:
    """One SCIM request: the token's org, the actor, and one transaction."""

    def __init__(self, request: Request, rt: Runtime, org: str) -> None:
        self.request, self.rt, self.org_name = request, rt, org
        self.base = rt.url(f"/scim/v2/{org}")
        self.raw = b""

    async def run(self, work: Callable[[Session, Org, Actor], Response]) -> Response:
        """``work`` on a request thread, never on the event loop, which serves every
        other request of this process meanwhile. One SCIM transaction runs at a
        time per process; each still takes one of the request threads."""
        async with _ONE_AT_A_TIME:
            return await on_request_thread(self._transaction, work)

    def _transaction(self, work: Callable[[Session, Org, Actor], Response]) -> Response:
        with self.rt.db.transaction() as db:
            caller = tokens.resolve(
                db, self.request.headers.get("authorization"), self.org_name, self.rt.now()
            )
            actor = Actor(
                label=caller.actor_label,
                client_address=client_address(self.request, self.rt.settings.trusted_proxies),
                trace_id=trace_id(self.request),
            )
            return work(db, caller.org, actor)

    async def read(self) -> None:
        """Receive the body; it is parsed only by :attr:`payload`, inside :meth:`run`,
        so a caller without this org's token learns nothing about its JSON."""
        self.raw = await self.request.body()

    @property
    def payload(self) -> object:
        content_type = self.request.headers.get("content-type", "")
        return _body(self.raw, content_type, self.rt.settings.max_body_bytes)


def _parameters(model: Any, attributes: str | None, excluded: str | None) -> Any:
    try:
        return ResponseParameters[model].model_validate(
            {"attributes": attributes, "excludedAttributes": excluded}
        )
    except ValueError as exc:
        raise InvalidValue("attributes or excludedAttributes name no such attribute.") from exc


def _out(call: Call, record: UserRecord | GroupRecord, params: Any = None) -> Any:
    """The User or Group as SCIM shows it."""
    if isinstance(record, UserRecord):
        model: Any = documents.user_model(record, call.base)
    else:
        model = documents.group_model(record, call.base)
    return model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params)


def _search_page(search: SearchRequest[Any], text: str | None) -> queries.Page:
    descending = search.sort_order == search.SortOrder.descending
    sort_by = str(search.sort_by) if search.sort_by is not None else None
    count = 100 if search.count is None else search.count
    return queries.Page(search.start_index or 1, count, text, sort_by, descending).checked()


def _list(total: int, page: queries.Page, resources: list[Any]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": page.start,
        "itemsPerPage": len(resources), "Resources": resources,
    }  # fmt: skip


# -- discovery ---------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
async def service_provider_config(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    return await call.run(
        lambda db, found, actor: _answer(discovery.service_provider_config(call.base))
    )


@router.get("/ResourceTypes")
async def resource_types(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    found = discovery.resource_types(call.base)
    return await call.run(lambda db, o, a: _answer(_list(len(found), queries.Page(), found)))


@router.get("/ResourceTypes/{name}")
async def resource_type(org: str, name: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    return await call.run(lambda db, o, a: _answer(_one(discovery.resource_types(call.base), name)))


@router.get("/Schemas")
async def schemas(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    found = discovery.schemas(call.base)
    return await call.run(lambda db, o, a: _answer(_list(len(found), queries.Page(), found)))


@router.get("/Schemas/{urn}")
async def schema(org: str, urn: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    return await call.run(lambda db, o, a: _answer(_one(discovery.schemas(call.base), urn)))


def _one(items: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    for item in items:
        if item.get("id") == wanted:
            return item
    raise ScimNotFound(f"No {wanted[:100]!r}.")


# -- Users -------------------------------------------------------------------------


@router.post("/.search")
async def search_everything(org: str, request: Request, rt: Rt) -> Response:
    """RFC 7644 §3.4.3 at the root: Users and Groups in one ListResponse."""
    call = Call(request, rt, org)
    await call.read()

    def work(db: Session, found: Org, actor: Actor) -> Response:
        search, text = documents.parse_search(User[EnterpriseUser] | Group, call.payload)
        page = _search_page(search, text)
        total, rows = queries.everything(db, found, page)
        return _answer(_list(total, page, [_out(call, r, search) for r in rows]))

    return await call.run(work)


@router.post("/Users/.search")
async def search_users(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()

    def work(db: Session, found: Org, actor: Actor) -> Response:
        search, text = documents.parse_search(User[EnterpriseUser], call.payload)
        page = _search_page(search, text)
        total, rows = queries.users(db, found, page)
        return _answer(_list(total, page, [_out(call, r, search) for r in rows]))

    return await call.run(work)


@router.post("/Groups/.search")
async def search_groups(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()

    def work(db: Session, found: Org, actor: Actor) -> Response:
        search, text = documents.parse_search(Group, call.payload)
        page = _search_page(search, text)
        total, rows = queries.groups(db, found, page)
        return _answer(_list(total, page, [_out(call, r, search) for r in rows]))

    return await call.run(work)


@router.get("/Users")
async def list_users(
    org: str, request: Request, rt: Rt, filter: Text = None,
    startIndex: int = 1, count: int = 100, sortBy: Text = None, sortOrder: Text = None,
    attributes: Text = None, excludedAttributes: Text = None,
) -> Response:  # noqa: N803  # fmt: skip
    call = Call(request, rt, org)
    page = queries.Page(startIndex, count, filter, sortBy, sortOrder == "descending").checked()
    params = _parameters(User[EnterpriseUser], attributes, excludedAttributes)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        total, rows = queries.users(db, found, page)
        return _answer(_list(total, page, [_out(call, r, params) for r in rows]))

    return await call.run(work)


@router.post("/Users")
async def create_user(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()

    def work(db: Session, found: Org, actor: Actor) -> Response:
        user = users.create(db, rt, actor, found, call.payload)
        return _answer(_out(call, user), 201, documents.etag(user.version))

    return await call.run(work)


@router.get("/Users/{scim_id}")
async def get_user(
    org: str, scim_id: str, request: Request, rt: Rt,
    attributes: Text = None, excludedAttributes: Text = None,
) -> Response:  # noqa: N803  # fmt: skip
    call = Call(request, rt, org)
    params = _parameters(User[EnterpriseUser], attributes, excludedAttributes)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        user = users.read(db, found, scim_id)
        return _answer(_out(call, user, params), etag=documents.etag(user.version))

    return await call.run(work)


@router.put("/Users/{scim_id}")
async def replace_user(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()
    if_match = request.headers.get("if-match")

    def work(db: Session, found: Org, actor: Actor) -> Response:
        user = users.replace(db, rt, actor, found, scim_id, call.payload, if_match)
        return _answer(_out(call, user), etag=documents.etag(user.version))

    return await call.run(work)


@router.patch("/Users/{scim_id}")
async def patch_user(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()
    if_match = request.headers.get("if-match")

    def work(db: Session, found: Org, actor: Actor) -> Response:
        user = users.patch(db, rt, actor, found, scim_id, call.payload, if_match, call.base)
        return _answer(_out(call, user), etag=documents.etag(user.version))

    return await call.run(work)


@router.delete("/Users/{scim_id}")
async def delete_user(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        users.delete_user(db, rt, actor, found, scim_id)
        return Response(status_code=204)

    return await call.run(work)


# -- Groups ------------------------------------------------------------------------


@router.get("/Groups")
async def list_groups(
    org: str, request: Request, rt: Rt, filter: Text = None,
    startIndex: int = 1, count: int = 100, sortBy: Text = None, sortOrder: Text = None,
    attributes: Text = None, excludedAttributes: Text = None,
) -> Response:  # noqa: N803  # fmt: skip
    call = Call(request, rt, org)
    page = queries.Page(startIndex, count, filter, sortBy, sortOrder == "descending").checked()
    params = _parameters(Group, attributes, excludedAttributes)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        total, rows = queries.groups(db, found, page)
        return _answer(_list(total, page, [_out(call, r, params) for r in rows]))

    return await call.run(work)


@router.post("/Groups")
async def create_group(org: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()

    def work(db: Session, found: Org, actor: Actor) -> Response:
        group = groups.create(db, rt, actor, found, call.payload)
        return _answer(_out(call, group), 201, documents.etag(group.version))

    return await call.run(work)


@router.get("/Groups/{scim_id}")
async def get_group(
    org: str, scim_id: str, request: Request, rt: Rt,
    attributes: Text = None, excludedAttributes: Text = None,
) -> Response:  # noqa: N803  # fmt: skip
    call = Call(request, rt, org)
    params = _parameters(Group, attributes, excludedAttributes)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        group = groups.read(db, found, scim_id)
        return _answer(_out(call, group, params), etag=documents.etag(group.version))

    return await call.run(work)


@router.put("/Groups/{scim_id}")
async def replace_group(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()
    if_match = request.headers.get("if-match")

    def work(db: Session, found: Org, actor: Actor) -> Response:
        group = groups.replace(db, rt, actor, found, scim_id, call.payload, if_match)
        return _answer(_out(call, group), etag=documents.etag(group.version))

    return await call.run(work)


@router.patch("/Groups/{scim_id}")
async def patch_group(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)
    await call.read()
    if_match = request.headers.get("if-match")

    def work(db: Session, found: Org, actor: Actor) -> Response:
        group = groups.patch(db, rt, actor, found, scim_id, call.payload, if_match, call.base)
        return _answer(_out(call, group), etag=documents.etag(group.version))

    return await call.run(work)


@router.delete("/Groups/{scim_id}")
async def delete_group(org: str, scim_id: str, request: Request, rt: Rt) -> Response:
    call = Call(request, rt, org)

    def work(db: Session, found: Org, actor: Actor) -> Response:
        groups.delete_group(db, rt, actor, found, scim_id)
        return Response(status_code=204)

    return await call.run(work)
