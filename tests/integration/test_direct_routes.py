"""The sign-in's browser hops served ahead of the framework (hubgate.web.direct):
``GET /sso/{org}/start`` and the OIDC callback answer as the framework's routes
would, parameters that are not plainly valid go to the framework's own route, and
the middleware outside (trace id, metrics, security headers) still sees them.

A leading zero in a row id (``007``) is valid but not plain: it sends the same
request through the framework, which makes the two ways in comparable."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Match

from hubgate import metrics
from hubgate.runtime import Runtime
from hubgate.web.direct import DirectRoute
from hubgate.web.protocols import sso
from tests.conftest import World
from tests.integration.test_oidc_flow import Provider, acme_connection, install


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The endpoints served directly, by name, in order."""
    served: list[str] = []
    original = sso.serve_endpoint

    def spy(request: Any, endpoint: Callable[..., Any], **params: Any) -> Any:
        served.append(endpoint.__name__)
        return original(request, endpoint, **params)

    monkeypatch.setattr(sso, "serve_endpoint", spy)
    yield served


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    return install(monkeypatch)


@pytest.fixture
def connection_id(world: World, rt: Runtime, provider: Provider) -> int:
    return acme_connection(world, rt)


def _requests(route: str) -> float:
    family = metrics.REGISTRY.get_sample_value(
        "hubgate_http_requests_total", {"route": route, "method": "GET", "status": "303"}
    )
    return family or 0.0


def test_a_sign_in_goes_through_both_direct_routes(
    client: TestClient, provider: Provider, connection_id: int, direct: list[str]
) -> None:
    before = _requests("/sso/{org}/start")
    start = client.get("/sso/acme/start", params={"next": "/acme"}, follow_redirects=False)
    assert start.status_code == 303 and start.headers["x-trace-id"]
    assert start.headers["referrer-policy"] == "no-referrer"  # the security headers, outside
    assert _requests("/sso/{org}/start") == before + 1  # the route template, as before
    answer = client.get(
        f"/sso/oidc/{connection_id}/callback",
        params=provider.authorize(start.headers["location"]),
        headers={"accept": "application/json"},
    )
    assert answer.status_code == 200 and answer.json()["next"] == "/acme"
    assert direct == ["start", "oidc_callback"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/sso/acme/start?connection=abc", "query.connection"),
        ("/sso/acme/start?connection=0", "query.connection"),
        ("/sso/acme/start?connection=", "query.connection"),
        ("/sso/acme/start?connection=99999999999", "query.connection"),
        (f"/sso/acme/start?email={'a' * 321}", "query.email"),
        ("/sso/oidc/0/callback", "path.connection_id"),
        ("/sso/oidc/-4/callback", "path.connection_id"),
        ("/sso/oidc/x/callback", "path.connection_id"),
    ],
)
def test_parameters_that_are_not_plain_get_the_frameworks_validation(
    client: TestClient, world: World, direct: list[str], path: str, field: str
) -> None:
    world.org("acme", world.user("admin@acme.test"))
    answer = client.get(path, headers={"accept": "application/json"}, follow_redirects=False)
    assert answer.status_code == 400 and direct == []
    assert [p["field"] for p in answer.json()["details"]["problems"]] == [field]


def test_head_is_the_frameworks_to_refuse(client: TestClient, direct: list[str]) -> None:
    assert client.head("/sso/acme/start").status_code == 405 and direct == []


def _answer(client: TestClient, path: str, accept: str) -> tuple[int, str, Any]:
    answer = client.get(path, headers={"accept": accept}, follow_redirects=False)
    if "json" not in answer.headers["content-type"]:
        return answer.status_code, answer.headers["content-type"], None
    body = answer.json()
    body.pop("trace_id", None)
    return answer.status_code, answer.headers["content-type"], body


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
@pytest.mark.parametrize(
    "path",
    [
        "/sso/nobody/start?connection={n}",  # no such org
        "/sso/acme/start?connection={n}",  # acme has no such connection
        "/sso/oidc/{n}/callback",  # no such connection
        "/sso/oidc/{n}/callback?state=forged&code=x",
    ],
)
def test_refusals_are_the_same_both_ways_in(
    client: TestClient, world: World, direct: list[str], path: str, accept: str
) -> None:
    world.org("acme", world.user("admin@acme.test"))
    directly = _answer(client, path.format(n="7"), accept)
    assert direct, "the plain id was served directly"
    framework = _answer(client, path.format(n="007"), accept)
    assert len(direct) == 1, "the leading zero went to the framework"
    assert directly == framework and directly[0] >= 400


def _served_as(route: str) -> float:
    """Requests the metrics name by ``route``'s template, whatever their status."""
    return sum(
        sample.value
        for family in metrics.REQUESTS.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["route"] == route
    )


@pytest.mark.parametrize(
    ("path", "through_framework"),
    [
        ("/sso/acme/start", "/sso/acme/start?connection=007"),
        ("/sso/join/start", "/sso/join/start?connection=007"),
        ("/sso/invite/start", "/sso/invite/start?connection=007"),
        ("/sso/oidc/start", "/sso/oidc/start?connection=007"),
        ("/sso/saml/start", "/sso/saml/start?connection=007"),
        ("/sso/oidc/12/callback", "/sso/oidc/012/callback"),
    ],
)
def test_the_framework_would_pick_the_same_route(
    client: TestClient, direct: list[str], path: str, through_framework: str
) -> None:
    """No route the app matches first (one added before the SSO router, or an SSO
    route with an overlapping path) is shadowed by a direct route: the framework,
    asked the same path, serves it by the route the direct one stands for."""
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "path_params": {}}
    claimed = [d.route for d in sso.DIRECT if d.route.matches(scope)[0] is Match.FULL]
    assert len(claimed) == 1
    before = _served_as(claimed[0].path)
    client.get(through_framework, follow_redirects=False)
    assert direct == [] and _served_as(claimed[0].path) == before + 1


def limited() -> None:
    """A dependency of the routes below (module-level: their annotations are strings)."""


def test_a_route_with_a_dependency_it_would_skip_is_refused() -> None:
    """A check added to the route later (a rate limit, say) must not be skipped by
    the direct way in without a word."""
    router = APIRouter()

    @router.get("/sso/{org}/start", dependencies=[Depends(limited)])
    def start(org: str) -> None: ...

    @router.get("/sso/{org}/other")
    def other(org: str, checked: Annotated[None, Depends(limited)]) -> None: ...

    for route in router.routes:
        assert isinstance(route, APIRoute)
        with pytest.raises(TypeError, match="dependencies a direct route skips"):
            DirectRoute(route, sso.DIRECT[0].handle)
    assert DirectRoute(sso.DIRECT[0].route, sso.DIRECT[0].handle)  # rt and credential only
