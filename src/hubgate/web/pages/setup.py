"""The setup portal ``/setup/{key}`` for an org's IT admin (no hubgate account):
create a SAML or OIDC connection, copy the values to give the IdP, map the
attributes, run a test sign-in, and activate the connection once verified.

Every page opens the link first: an expired, revoked or spent link gets its own
page. The portal acts for that org's SSO connections only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from hubgate.db.models import SetupLink
from hubgate.errors import BadRequest, HubgateError
from hubgate.runtime import Runtime
from hubgate.sso import (
    activation,
    connection_summary,
    connections,
    idp_guides,
    mappings,
    policy,
    setup,
)
from hubgate.sso.oidc.config import TokenAuth
from hubgate.web.context import Rt, client_address, trace_id
from hubgate.web.pages.kit import page_router, render, see_other
from hubgate.web.schemas import RowId
from hubgate.web.threads import on_network_thread

__all__ = ["router"]

router = page_router()
_MAX_METADATA = 512 * 1024
Text = Annotated[str, Form(max_length=2048)]
Names = Annotated[str, Form(max_length=1024)]
IdpChoice = Annotated[str, Query(max_length=32)]
"""The IT admin's identity provider, by guide name (``okta``, ``entra``, ...)."""
IdpField = Annotated[str, Form(max_length=32)]


def _portal(db: Session, rt: Runtime, key: str) -> setup.Portal:
    return setup.open_portal(db, key[:256], rt.now())


def _actor(request: Request, rt: Runtime, portal: setup.Portal) -> Any:
    return portal.actor(client_address(request, rt.settings.trusted_proxies), trace_id(request))


def _overview(
    request: Request, rt: Runtime, key: str, status: int = 200, idp: str = "", **extra: Any
) -> Response:
    with rt.db.transaction() as db:
        portal = _portal(db, rt, key)
        rows = [connection_summary.describe(rt, c) for c in connections.of_org(db, portal.org)]
    context = {"portal": portal, "key": key, "connections": rows, **_guide(idp), **extra}
    return render(request, rt, "setup.html", context, status)


def _guide(idp: str) -> dict[str, Any]:
    """The chosen IdP's guide (None when none or an unknown one is chosen)."""
    return {"guide": idp_guides.find(idp), "guides": list(idp_guides.GUIDES.values())}


def _after_create(key: str, connection_id: int, idp: str) -> Response:
    guide = idp_guides.find(idp)
    chosen = f"?idp={guide.slug}" if guide else ""
    return see_other(f"/setup/{key}/connections/{connection_id}{chosen}")


@router.get("/setup/{key}")
def overview(key: str, request: Request, rt: Rt, idp: IdpChoice = "") -> Response:
    return _overview(request, rt, key, idp=idp)


@router.post("/setup/{key}/saml")
async def create_saml(
    key: str,
    request: Request,
    rt: Rt,
    metadata_xml: Annotated[str, Form(max_length=_MAX_METADATA)] = "",
    metadata_url: Text = "",
    metadata_file: UploadFile | None = None,
    idp: IdpField = "",
) -> Response:
    """IdP metadata pasted, uploaded, or fetched from its URL. The upload is read
    on the event loop; the fetch and the transaction run on a network thread
    (:mod:`hubgate.web.threads`)."""
    uploaded = await metadata_file.read(_MAX_METADATA + 1) if metadata_file else b""
    return await on_network_thread(
        _create_saml, request, rt, key, metadata_xml, metadata_url, uploaded, idp
    )


def _create_saml(
    request: Request, rt: Runtime, key: str, pasted: str, url: str, uploaded: bytes, idp: str
) -> Response:
    try:
        metadata = _metadata(rt, pasted, url.strip(), uploaded)
        with rt.db.transaction() as db:
            portal = _portal(db, rt, key)
            row = connections.create_saml(
                db, rt, _actor(request, rt, portal), portal.principal, portal.org, metadata,
                metadata_url=url.strip() or None,
            )  # fmt: skip
    except setup.SetupLinkEnded:
        raise
    except HubgateError as exc:
        return _overview(request, rt, key, exc.status, idp, error=exc.message, tab="saml")
    return _after_create(key, row.id, idp)


def _metadata(rt: Runtime, pasted: str, url: str, uploaded: bytes) -> bytes:
    given = [bool(pasted.strip()), bool(url), bool(uploaded)]
    if sum(given) != 1:
        raise BadRequest("Paste the IdP metadata, upload its file, or give its URL (one of them).")
    if len(uploaded) > _MAX_METADATA:
        raise BadRequest("The metadata file is larger than 512 KiB.")
    if url:  # never a local path: that is the CLI's privilege
        if not url.startswith(("https://", "http://")):
            raise BadRequest("Give the metadata URL as http(s)://...", code="url_invalid")
        return connections.load_metadata(rt, url)
    return uploaded or pasted.encode()


@router.post("/setup/{key}/oidc")
async def create_oidc(
    key: str,
    request: Request,
    rt: Rt,
    issuer: Text = "",
    client_id: Annotated[str, Form(max_length=256)] = "",
    client_secret: Annotated[str, Form(max_length=1024)] = "",
    token_auth: Annotated[str, Form(max_length=32)] = TokenAuth.CLIENT_SECRET_BASIC.value,
    idp: IdpField = "",
) -> Response:
    """The provider's discovery document, then the connection: on a network thread
    (:mod:`hubgate.web.threads`)."""
    return await on_network_thread(
        _create_oidc, request, rt, key, issuer, client_id, client_secret, token_auth, idp
    )


def _create_oidc(
    request: Request, rt: Runtime, key: str, issuer: str, client_id: str, client_secret: str,
    token_auth: str, idp: str,
) -> Response:  # fmt: skip
    try:
        auth = TokenAuth(token_auth)
    except ValueError:
        return _overview(
            request, rt, key, 400, idp, error="Choose a client authentication.", tab="oidc"
        )
    try:
        with rt.db.transaction() as db:
            _portal(db, rt, key)
        provider = connections.discover(rt, issuer.strip())  # outside any transaction
        with rt.db.transaction() as db:
            portal = _portal(db, rt, key)
            row = connections.create_oidc(
                db, rt, _actor(request, rt, portal), portal.principal, portal.org,
                issuer=issuer.strip(), client_id=client_id.strip(), client_secret=client_secret,
                token_auth=auth, provider=provider,
            )  # fmt: skip
    except setup.SetupLinkEnded:
        raise
    except HubgateError as exc:
        return _overview(request, rt, key, exc.status, idp, error=exc.message, tab="oidc")
    return _after_create(key, row.id, idp)


def _connection_page(
    request: Request,
    rt: Runtime,
    key: str,
    connection_id: int,
    status: int = 200,
    idp: str = "",
    **extra: Any,
) -> Response:
    with rt.db.transaction() as db:
        portal = _portal(db, rt, key)
        row = connections.get(db, connection_id, org_id=portal.org.id)
        attempt = setup.last_attempt(db, row.id)
        would_get = None
        if attempt and attempt["ok"]:
            groups = attempt["identity"].get("groups", [])
            would_get = mappings.preview(db, portal.org.id, groups, {})
        described = connection_summary.describe(rt, row)
        context = {
            "portal": portal, "key": key, "connection": described,
            "sp_values": _sp_values(described),
            "read_by_default": idp_guides.read_by_default(row.kind), **_guide(idp),
            "attempt": attempt, "would_get": would_get,
            "default_role": policy.policy_of(db, portal.org.id).default_role.label,
            "test_url": f"/sso/{portal.org.name}/start?connection={row.id}"
            f"&next=/setup/{key}/connections/{row.id}",
            **extra,
        }  # fmt: skip
    return render(request, rt, "setup_connection.html", context, status)


def _sp_values(described: dict[str, Any]) -> dict[str, str]:
    """The connection's values a guide fills in, by :class:`idp_guides.SpValue`."""
    logout = described["logout"]
    found = {**described, **logout, "slo_url": logout.get("sp_slo_url")}
    return {v.value: str(found[v.value]) for v in idp_guides.SpValue if found.get(v.value)}


@router.get("/setup/{key}/connections/{connection_id}")
def connection_page(
    key: str, connection_id: RowId, request: Request, rt: Rt, idp: IdpChoice = ""
) -> Response:
    return _connection_page(request, rt, key, connection_id, idp=idp)


@router.post("/setup/{key}/connections/{connection_id}/attributes")
def set_attributes(
    key: str,
    connection_id: RowId,
    request: Request,
    rt: Rt,
    email: Names = "",
    name: Names = "",
    groups: Names = "",
) -> Response:
    """Which IdP attributes (SAML) or claims (OIDC) carry the email, name and groups."""
    try:
        with rt.db.transaction() as db:
            portal = _portal(db, rt, key)
            row = connections.get(db, connection_id, org_id=portal.org.id)
            changes = _attribute_changes(row.kind, email, name, groups)
            actor = _actor(request, rt, portal)
            if row.kind == "oidc":
                connections.update_oidc(db, rt, actor, portal.principal, row, changes)
            else:
                connections.update_settings(db, actor, portal.principal, row, changes)
    except setup.SetupLinkEnded:
        raise
    except HubgateError as exc:
        return _connection_page(request, rt, key, connection_id, exc.status, error=exc.message)
    return see_other(f"/setup/{key}/connections/{connection_id}")


def _attribute_changes(kind: str, email: str, name: str, groups: str) -> dict[str, Any]:
    given = {"email": email.strip(), "name": name.strip(), "groups": groups.strip()}
    if kind == "oidc":
        return {f"{k}_claim": v for k, v in given.items() if v}
    return {f"{k}_attributes": [a.strip()[:256] for a in v.split(",") if a.strip()][:8]
            for k, v in given.items() if v}  # fmt: skip


@router.post("/setup/{key}/connections/{connection_id}/activate")
def activate(key: str, connection_id: RowId, request: Request, rt: Rt) -> Response:
    """Activate once a test sign-in succeeded; the link is spent."""
    try:
        with rt.db.transaction() as db:
            portal = _portal(db, rt, key)
            row = connections.get(db, connection_id, org_id=portal.org.id)
            actor = _actor(request, rt, portal)
            activation.activate(db, actor, portal.principal, row)
            link = db.get_one(SetupLink, portal.link_id)
            setup.end(db, actor, link, rt.now(), setup.SetupLinkEnd.USED)
            org = portal.org.display_name
    except setup.SetupLinkEnded:
        raise
    except HubgateError as exc:
        return _connection_page(request, rt, key, connection_id, exc.status, error=exc.message)
    return render(request, rt, "setup_done.html", {"org": org})
