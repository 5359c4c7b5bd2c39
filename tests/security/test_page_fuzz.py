"""Every route outside the JSON API (pages, forms, protocol endpoints), with hostile
words in its path: no answer is a 500. The API has its OpenAPI document and
test_api_fuzz.py; these routes have none, so they are listed from the app itself.

The caller is a signed-in org admin whose forms carry a valid CSRF token, so the
paths are exercised past authentication (a 500 there was once one word away:
``/{org}/sso/connections/{id}/frobnicate``)."""

from __future__ import annotations

import re
from collections import Counter

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from hubgate.access import OrgRole
from hubgate.app import create_app
from hubgate.runtime import Runtime
from tests.conftest import World, sign_in
from tests.integration.sso_world import sso_org

# Words a path segment may carry: unknown, numeric edge, overlong, encoded NUL and
# slash, traversal, non-ASCII.
WORDS = ("frobnicate", "0", "-1", "99999999999999999999", "%00", "%2F..", "x" * 300, "ü")
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route with a parameter outside /api/."""
    found = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        if path is None or path.startswith("/api/") or not _PARAM.search(path):
            continue
        found += [(method, path) for method in sorted(context.methods or ()) if method != "HEAD"]
    return found


def _paths(template: str, known: dict[str, str]) -> list[str]:
    """The template once per word in each parameter, every other parameter a value
    that names a row of the world (so the route reaches past that lookup) or "1"."""
    names = _PARAM.findall(template)
    paths = []
    for hostile in names:
        for word in WORDS:
            values = {n: word if n == hostile else known.get(n, "1") for n in names}
            paths.append(_filled(template, values))
    return paths


def _filled(template: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda match: values[match.group(1)], template)


def test_no_page_route_answers_a_hostile_path_with_a_server_error(
    rt: Runtime, world: World
) -> None:
    acme = sso_org(rt, world)
    member = world.user("member@acme.example")
    world.member(acme.org, member, OrgRole.WRITE)
    known = {"org": "acme", "connection_id": str(acme.connection_id), "user_id": str(member.id)}
    app = create_app(runtime=rt)
    client = TestClient(app, raise_server_exceptions=False)
    token = sign_in(client, "admin@acme.example")
    routes = _routes(app)
    assert len(routes) >= 40, routes  # the listing found the app's routes
    statuses: Counter[int] = Counter()
    failures = []
    for method, template in routes:
        for path in _paths(template, known):
            answer = client.request(
                method, path, data={"csrf_token": token} if method == "POST" else None,
                headers={"accept": "text/html"}, follow_redirects=False,
            )  # fmt: skip
            statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                failures.append((method, path[:120], answer.status_code))
            if answer.status_code == 401 and not template.startswith("/scim/"):
                token = sign_in(client, "admin@acme.example")  # the session ended
    assert not failures, failures
    assert statuses[401] + statuses[403] < sum(statuses.values()) / 2, statuses
