"""The documented URL rules of forward-auth (web/protocols/forward_auth.py)."""

from __future__ import annotations

import pytest

from hubgate.access import Action, ResourceKind
from hubgate.gate.paths import Route, map_request


@pytest.mark.parametrize(
    ("uri", "method", "expected"),
    [
        ("/acme/models/llama", "GET", Route("acme", ResourceKind.MODEL, "llama", Action.READ)),
        ("/acme/models/llama/resolve/main/config.json?x=1", "HEAD",
         Route("acme", ResourceKind.MODEL, "llama", Action.READ)),
        ("/acme/models/llama/upload", "POST", Route("acme", ResourceKind.MODEL, "llama", Action.WRITE)),
        ("/acme/datasets/eval", "PUT", Route("acme", ResourceKind.DATASET, "eval", Action.WRITE)),
        ("/acme/spaces/demo", "DELETE", Route("acme", ResourceKind.SPACE, "demo", Action.DELETE)),
        ("/acme/spaces/demo/", "DELETE", Route("acme", ResourceKind.SPACE, "demo", Action.DELETE)),
        ("/acme/spaces/demo/file.txt", "DELETE", Route("acme", ResourceKind.SPACE, "demo", Action.WRITE)),
        ("/acme/deployments/chat/predict", "POST",
         Route("acme", ResourceKind.DEPLOYMENT, "chat", Action.CALL)),
        ("/acme/deployments/chat/v1/chat/completions", "POST",
         Route("acme", ResourceKind.DEPLOYMENT, "chat", Action.CALL)),
        ("/acme/deployments/chat/generate", "GET",
         Route("acme", ResourceKind.DEPLOYMENT, "chat", Action.CALL)),
        ("/acme/deployments/chat", "GET", Route("acme", ResourceKind.DEPLOYMENT, "chat", Action.READ)),
        ("/acme/deployments/chat/scale", "POST",
         Route("acme", ResourceKind.DEPLOYMENT, "chat", Action.DEPLOY)),
        ("/acme/models/a%20b", "GET", Route("acme", ResourceKind.MODEL, "a b", Action.READ)),
    ],
)  # fmt: skip
def test_documented_rules(uri: str, method: str, expected: Route) -> None:
    assert map_request(uri, method) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "", "/", "/acme", "/acme/models", "/acme/models/", "/acme/weights/x", "acme/models/x",
        "//acme/models/x", "/acme/models/../x", "/acme/models/.", "/acme//models/x",
        "/acme/models/a%2Fb", "/acme/models/a%5Cb", "/" + "a" * 5000,
        "/acme/models/x/../../../other/models/y",
        "/acme/models/x/%2e%2e/%2e%2e/%2e%2e/other/models/y",
        "/acme/models/x/..;/..;/..;/other/models/y",
        "/acme/models/x/%252e%252e/y",
        "/acme/models/x/a\\..\\..\\b",
        "http://evil.example/acme/models/x/../../../other/models/y",
        "/acme/models/x%00",
        "/acme/models/open#/../secret",
        "/acme/models/open#x",
        "/acme/models/open?#/../../secret",
        "acme/models/x",
    ],
)  # fmt: skip
def test_paths_that_an_upstream_could_read_differently_fail_closed(uri: str) -> None:
    """Dot segments, encoded separators and double encoding are refused: nginx passes
    ``$request_uri`` raw, and an upstream that normalizes it would otherwise serve
    another resource than the one hubgate checked."""
    assert map_request(uri, "GET") is None
