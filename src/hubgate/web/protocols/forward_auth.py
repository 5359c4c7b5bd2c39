"""Forward-auth: ``GET /auth/check`` for nginx ``auth_request``, Traefik
``forwardAuth`` and Caddy ``forward_auth``.

The proxy sends the original request's path (``X-Original-URI`` or
``X-Forwarded-Uri``) and method (``X-Original-Method`` or
``X-Forwarded-Method``), plus the caller's ``Authorization`` header or cookie.
The path is mapped to a resource and an action by these rules:

====================================================  ==========================
original request                                      action
====================================================  ==========================
``/{org}/deployments/{name}/predict|invoke|generate``  ``call`` (any method)
``/{org}/deployments/{name}/v1/...``                  ``call`` (OpenAI-style API)
``DELETE /{org}/{kind}s/{name}``                      ``delete``
``GET|HEAD|OPTIONS /{org}/{kind}s/{name}[/...]``      ``read``
other methods on ``/{org}/deployments/{name}/...``    ``deploy``
other methods on ``/{org}/{kind}s/{name}/...``        ``write``
====================================================  ==========================

Deployments bound to a host (read from the header ``HUBGATE_HOST_HEADER``
names, ``X-Original-Host`` or ``X-Forwarded-Host``) or a path prefix are
matched first, every request there a ``call`` (:mod:`hubgate.gate.routes`).

``{kind}s`` is ``models``, ``datasets``, ``spaces`` or ``deployments``. Any other
path is refused with ``route_unmapped`` (fail closed), and so is anything an
upstream could read as another path than the one checked: a URI that does not
start with ``/``, a ``#`` (a request line never carries a fragment), dot segments
and encoded separators. The answer is 200 with
``X-Hubgate-User`` and ``X-Hubgate-Org``, 401 (no or bad credential) or 403, each
refusal with ``X-Hubgate-Reason``; proxies understand only these codes, so an
unknown resource answers 403 ``not_found`` too.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hubgate import metrics
from hubgate.access import Action, CredentialKind, Deny, ResourceKind, decide
from hubgate.errors import HubgateError
from hubgate.gate import route_table
from hubgate.gate.routes import Route
from hubgate.gate.routes import plain_segment as _plain
from hubgate.principals import Credential, resource_access
from hubgate.web.context import Rt, resolve_credential

__all__ = ["Route", "map_request", "router"]

router = APIRouter(tags=["forward-auth"])
_CALL_SUFFIXES = frozenset({"predict", "invoke", "generate", "v1"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_URI = 4096


def map_request(uri: str, method: str) -> Route | None:
    """The resource and action an original request touches, or ``None`` if unmapped."""
    if not uri.startswith("/") or len(uri) > _MAX_URI or "#" in uri:
        return None
    path = uri.split("?", maxsplit=1)[0]
    parts = [unquote(p) for p in path.split("/")]
    if len(parts) < 4 or parts[0] != "" or "" in parts[1:4] or not all(map(_plain, parts)):
        return None
    org, plural, name, rest = parts[1], parts[2], parts[3], parts[4:]
    kind = next((k for k in ResourceKind if k.plural == plural), None)
    if kind is None:
        return None
    return Route(org, kind, name, _action(kind, method.upper(), rest))


def _action(kind: ResourceKind, method: str, rest: list[str]) -> Action:
    if kind is ResourceKind.DEPLOYMENT and rest and rest[0] in _CALL_SUFFIXES:
        return Action.CALL
    if method == "DELETE" and not [p for p in rest if p]:
        return Action.DELETE
    if method in _READ_METHODS:
        return Action.READ
    return Action.DEPLOY if kind is ResourceKind.DEPLOYMENT else Action.WRITE


def _refuse(status: int, reason: str) -> Response:
    metrics.DECISIONS.labels("forward_auth", reason).inc()
    return Response(status_code=status, headers={"X-Hubgate-Reason": reason})


@router.get("/auth/check", include_in_schema=True)
def check(request: Request, rt: Rt) -> Response:
    """Answer the proxy: may this credential make the original request?"""
    headers = request.headers
    uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri") or ""
    method = headers.get("x-original-method") or headers.get("x-forwarded-method") or "GET"
    host = headers.get(rt.settings.host_header) if rt.settings.host_header else None
    route = route_table.current(rt).match(host, uri) or map_request(uri, method)
    if route is None:
        return _refuse(403, "route_unmapped")
    with rt.db.transaction() as db:
        try:
            credential = resolve_credential(db, rt, request)
        except HubgateError as exc:
            return _refuse(401, exc.code)
        found = resource_access(db, credential, route.org, route.kind, route.name)
        if found is None:
            return _refuse(401 if credential.kind is CredentialKind.ANONYMOUS else 403, "not_found")
        target, principal = found
        decision = decide(principal, route.action, target)
    if isinstance(decision, Deny):
        return _refuse(_status(credential, decision), decision.reason)
    metrics.DECISIONS.labels("forward_auth", "allow").inc()
    return Response(status_code=200, headers=_identity(credential, route))


def _status(credential: Credential, denial: Deny) -> int:
    if credential.kind is CredentialKind.ANONYMOUS or denial.reason in {
        "sso_required",
        "credential_revoked",
    }:
        return 401
    return 403


def _identity(credential: Credential, route: Route) -> dict[str, str]:
    identity = {
        "X-Hubgate-Org": route.org,
        "X-Hubgate-Action": route.action.value,
        "X-Hubgate-Credential": credential.kind.value,
    }
    if credential.kind is not CredentialKind.ANONYMOUS:
        identity["X-Hubgate-User"] = credential.subject
    return identity
