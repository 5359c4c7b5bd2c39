"""The dev IdP as one small Starlette app: the SAML IdP under ``/saml``, the
OpenID provider under ``/oidc``, a login page for each, ``/healthz``, and a home
page with what an SP or RP needs (metadata URL, issuer, the OIDC clients with
their secrets: test values, for pasting into hubgate's setup portal).

NOT FOR PRODUCTION: plain-text test passwords, no IdP session (every sign-in
asks again), codes in memory. Every input is bounded (bodies, fields,
parameters) and a refusal is a 4xx page or an RFC 6749 JSON error, never a 500.

    GET  /saml/metadata                 IdP metadata (signing certificate)
    GET  /saml/sso?SAMLRequest=...      SP-initiated sign-in (HTTP-Redirect)
    GET  /saml/idp-initiated?sp=...     IdP-initiated sign-in (registered SPs only)
    POST /saml/sso                      the login form; answers with an auto-posting form
    GET  /oidc/.well-known/openid-configuration, /oidc/jwks
    GET  /oidc/authorize, POST /oidc/authorize (the login form), POST /oidc/token,
    GET|POST /oidc/userinfo
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate.devidp import oidc, saml
from hubgate.devidp.keys import SigningKey
from hubgate.devidp.users import Directory, SamlSp, User

__all__ = ["DevIdp", "create_app"]

MAX_BODY = 64 * 1024
MAX_FIELDS = 16
MAX_RELAY_STATE = 80  # SAML bindings §3.4.3
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("hubgate.devidp", "templates"), autoescape=True
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class DevIdp:
    """Everything the routes read: where it listens, who exists, how it signs."""

    base_url: str
    directory: Directory
    key: SigningKey
    grants: oidc.Grants = field(default_factory=oidc.Grants)
    jwk: RSAKey = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.jwk = self.key.jwk

    def check_password(self, login: str, password: str) -> User | None:
        user = self.directory.user(login[:256])
        presented = password[:256].encode()
        if user is None or not hmac.compare_digest(presented, user.password.encode()):
            return None
        return user


# -- pages --------------------------------------------------------------------------


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page under hubgate's rules (hubgate.web.security_headers), tighter: nothing
    loads but the page's own style and the nonce'd script that auto-posts a SAML
    answer; no form-action, since that form posts to the SP's origin. Its URLs
    carry the SP's request and relay state: no Referer leaves it."""
    nonce = secrets.token_urlsafe(16)
    body = _TEMPLATES.get_template(name).render(nonce=nonce, **context)
    policy = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    headers = {
        **_NO_STORE, "Content-Security-Policy": policy, "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    }  # fmt: skip
    return HTMLResponse(body, status, headers=headers)


def refusal(message: str, status: int = 400) -> HTMLResponse:
    return page("message.html", status, title="Sign-in refused", message=message, error=True)


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form, at most :data:`MAX_FIELDS` text fields."""
    try:
        form: FormData = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise
        raise HTTPException(400, "The form is malformed or has too many fields.") from exc
    return {k: v for k, v in form.items() if isinstance(v, str)}


def idp(request: Request) -> DevIdp:
    found: DevIdp = request.app.state.idp
    return found


async def index(request: Request) -> Response:
    site = idp(request)
    return page(
        "index.html", title="hubgate dev IdP", users=site.directory.users,
        saml_metadata=saml.entity_id(site.base_url), saml_sso=saml.sso_url(site.base_url),
        issuer=oidc.issuer(site.base_url), loopback_sps=site.directory.loopback_sps,
        clients=site.directory.oidc_clients,
    )  # fmt: skip


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "warning": "development IdP, not for production"})


# -- SAML ---------------------------------------------------------------------------


async def saml_metadata(request: Request) -> Response:
    site = idp(request)
    document = saml.idp_metadata(site.base_url, site.key)
    return Response(document, media_type="application/samlmetadata+xml")


@dataclass(frozen=True, slots=True)
class _SamlStep:
    """A sign-in in progress: the SP, the request it answers, the form's fields."""

    sp: SamlSp
    request_id: str | None
    hidden: dict[str, str]


def _saml_step(site: DevIdp, values: Mapping[str, str]) -> _SamlStep:
    relay_state = values.get("RelayState", "")
    if len(relay_state) > MAX_RELAY_STATE:
        raise saml.RequestRefused("The RelayState is longer than 80 bytes.")
    hidden = {"RelayState": relay_state} if relay_state else {}
    if "SAMLRequest" in values:
        request = saml.parse_redirect_request(
            values["SAMLRequest"], site.base_url, datetime.now(UTC)
        )
        sp = saml.destination_for(site.directory, request.issuer, request.acs_url)
        return _SamlStep(sp, request.id, {**hidden, "SAMLRequest": values["SAMLRequest"]})
    registered = site.directory.saml_sp(values.get("sp", "")[:2048])
    if registered is None:
        raise saml.RequestRefused("Give a SAMLRequest, or the entity id of a registered SP.")
    return _SamlStep(registered, None, {**hidden, "sp": registered.entity_id})


def _saml_login(step: _SamlStep, status: int = 200, error: str = "", login: str = "") -> Response:
    return page(
        "login.html", status, title="Sign in", protocol="SAML 2.0", audience=step.sp.entity_id,
        action="/saml/sso", hidden=step.hidden, error=error, login=login,
    )  # fmt: skip


async def saml_sso(request: Request) -> Response:
    params = {k: v for k, v in request.query_params.items() if k in ("SAMLRequest", "RelayState")}
    try:
        step = _saml_step(idp(request), params)
    except saml.RequestRefused as exc:
        return refusal(str(exc))
    return _saml_login(step)


async def saml_idp_initiated(request: Request) -> Response:
    try:
        step = _saml_step(idp(request), {"sp": request.query_params.get("sp", "")})
    except saml.RequestRefused as exc:
        return refusal(str(exc))
    return _saml_login(step)


async def saml_sign_in(request: Request) -> Response:
    site, values = idp(request), await form_of(request)
    try:
        step = _saml_step(site, values)
    except saml.RequestRefused as exc:
        return refusal(str(exc))
    login = values.get("login", "")
    user = site.check_password(login, values.get("password", ""))
    if user is None:
        return _saml_login(step, 401, "Wrong email or password.", login[:256])
    answer = saml.Answer(step.sp, user, step.request_id, datetime.now(UTC))
    fields = {"SAMLResponse": saml.signed_response(site.base_url, site.key, answer)}
    if "RelayState" in step.hidden:
        fields["RelayState"] = step.hidden["RelayState"]
    return page(
        "post.html", title="Signed in", user=user.email, action=step.sp.acs_url, fields=fields
    )


# -- OIDC ---------------------------------------------------------------------------


async def oidc_discovery(request: Request) -> Response:
    return JSONResponse(oidc.discovery(idp(request).base_url))


async def oidc_jwks(request: Request) -> Response:
    return JSONResponse(idp(request).key.public_jwks())


def _authorization(site: DevIdp, values: Mapping[str, str]) -> oidc.AuthorizationRequest:
    wanted = (
        "client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
        "code_challenge", "code_challenge_method",
    )  # fmt: skip
    return oidc.authorization_request(
        site.directory, site.base_url, {k: v for k, v in values.items() if k in wanted}
    )


def _oidc_login(
    request: oidc.AuthorizationRequest, status: int = 200, error: str = "", login: str = ""
) -> Response:
    return page(
        "login.html", status, title="Sign in", protocol="OpenID Connect",
        audience=request.client_id, action="/oidc/authorize", hidden=request.hidden_fields(),
        error=error, login=login,
    )  # fmt: skip


def _oidc_refusal(exc: oidc.OAuthError) -> Response:
    if isinstance(exc, oidc.RedirectError):
        return RedirectResponse(exc.location, status_code=303)
    return refusal(f"{exc.error}: {exc.description}", exc.status)


async def oidc_authorize(request: Request) -> Response:
    try:
        authorization = _authorization(idp(request), dict(request.query_params))
    except oidc.OAuthError as exc:
        return _oidc_refusal(exc)
    return _oidc_login(authorization)


async def oidc_sign_in(request: Request) -> Response:
    site, values = idp(request), await form_of(request)
    try:
        authorization = _authorization(site, values)
    except oidc.OAuthError as exc:
        return _oidc_refusal(exc)
    login = values.get("login", "")
    user = site.check_password(login, values.get("password", ""))
    if user is None:
        return _oidc_login(authorization, 401, "Wrong email or password.", login[:256])
    try:
        code = site.grants.issue_code(authorization, user)
    except oidc.OAuthError as exc:
        return _oidc_refusal(exc)
    return RedirectResponse(oidc.redirect_with_code(authorization, code), status_code=303)


async def oidc_token(request: Request) -> Response:
    site, form = idp(request), await form_of(request)
    try:
        body = oidc.token_response(
            site.directory, site.grants, site.jwk, form, request.headers.get("authorization")
        )
    except oidc.OAuthError as exc:
        headers = {**_NO_STORE}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="hubgate dev-idp"'
        return JSONResponse(exc.body(), exc.status, headers=headers)
    return JSONResponse(body, headers=_NO_STORE)


async def oidc_userinfo(request: Request) -> Response:
    site = idp(request)
    try:
        body = oidc.userinfo(site.directory, site.grants, request.headers.get("authorization"))
    except oidc.OAuthError as exc:
        challenge = f'Bearer error="{exc.error}"'
        return JSONResponse(exc.body(), exc.status, headers={"WWW-Authenticate": challenge})
    return JSONResponse(body, headers=_NO_STORE)


# -- the app --------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"0")
        if not declared.isdigit():
            await Response("Malformed Content-Length.", 400)(scope, receive, send)
            return
        if int(declared) > self.limit:
            await Response("Request body too large.", 413)(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, "Request body too large.")
            return message

        await self.app(scope, bounded, send)


def create_app(site: DevIdp) -> Starlette:
    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/saml/metadata", saml_metadata),
        Route("/saml/sso", saml_sso, methods=["GET"]),
        Route("/saml/sso", saml_sign_in, methods=["POST"]),
        Route("/saml/idp-initiated", saml_idp_initiated),
        Route("/oidc/.well-known/openid-configuration", oidc_discovery),
        Route("/oidc/jwks", oidc_jwks),
        Route("/oidc/authorize", oidc_authorize, methods=["GET"]),
        Route("/oidc/authorize", oidc_sign_in, methods=["POST"]),
        Route("/oidc/token", oidc_token, methods=["POST"]),
        Route("/oidc/userinfo", oidc_userinfo, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.idp = site
    app.add_middleware(BodyLimit)
    return app
