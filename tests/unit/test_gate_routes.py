"""Deployment routes (gate/routes.py): which bound deployment a request goes to,
and what may be bound. Hostile inputs first: anything an upstream could read as
another path or another host than the one checked must match nothing."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.access import Action, ResourceKind
from hubgate.errors import BadRequest
from hubgate.gate.paths import MAX_URI, Route
from hubgate.gate.routes import Binding, RouteTable, check_host, check_prefix


def call(org: str, name: str) -> Route:
    return Route(org, ResourceKind.DEPLOYMENT, name, Action.CALL)


TABLE = RouteTable(
    [
        Binding("acme", "llama", None, "/acme/deployments/llama/"),
        Binding("acme", "llama-big", None, "/acme/deployments/llama/big/"),
        Binding("acme", "gateway", "llm.acme.example", None),
        Binding("acme", "tgi", "llm.acme.example", "/tgi/"),
        Binding("beta", "sglang", "models.beta.example", "/beta/deployments/llama/"),
    ]
)


@pytest.mark.parametrize(
    ("host", "uri", "expected"),
    [
        (None, "/acme/deployments/llama/v1/chat/completions", call("acme", "llama")),
        (None, "/acme/deployments/llama/v1/models?x=1", call("acme", "llama")),
        (None, "/acme/deployments/llama", call("acme", "llama")),
        (None, "/acme/deployments/llama/", call("acme", "llama")),
        (None, "/acme/deployments/llama/health", call("acme", "llama")),
        # the longest prefix wins
        (None, "/acme/deployments/llama/big/v1/completions", call("acme", "llama-big")),
        (None, "/acme/deployments/llama/bigger/v1", call("acme", "llama")),
        # a host alone covers every path on it; a prefix on the same host wins
        ("llm.acme.example", "/v1/chat/completions", call("acme", "gateway")),
        ("llm.acme.example", "/tgi/generate", call("acme", "tgi")),
        ("llm.acme.example", "/tgix/generate", call("acme", "gateway")),
        # host-specific before host-less, whatever the prefix lengths
        ("llm.acme.example", "/acme/deployments/llama/v1", call("acme", "gateway")),
        ("models.beta.example", "/beta/deployments/llama/v1", call("beta", "sglang")),
        # the host as proxies spell it: case, port, one trailing dot
        ("LLM.Acme.Example", "/v1/models", call("acme", "gateway")),
        ("llm.acme.example:8443", "/v1/models", call("acme", "gateway")),
        ("llm.acme.example.", "/v1/models", call("acme", "gateway")),
        ("llm.acme.example.:443", "/v1/models", call("acme", "gateway")),
        # an encoded plain character is the same segment
        (None, "/acme/deployments/ll%61ma/v1", call("acme", "llama")),
    ],
)
def test_bound_requests_are_calls_of_their_deployment(
    host: str | None, uri: str, expected: Route
) -> None:
    assert TABLE.match(host, uri) == expected


@pytest.mark.parametrize(
    ("host", "uri"),
    [
        # prefixes match whole segments only
        (None, "/acme/deployments/llamaX/v1"),
        (None, "/acme/deployments/llam"),
        (None, "/acme/deployments/"),
        (None, "/v1/chat/completions"),
        # a prefix bound with a host needs that host
        (None, "/tgi/generate"),
        (None, "/beta/deployments/llama/v1"),
        ("other.example", "/tgi/generate"),
        # hosts that only look alike
        ("llm.acme.example.evil.example", "/v1/models"),
        ("evil-llm.acme.example", "/v1/models"),
        ("acme.example", "/v1/models"),
        ("llm.acme.example..", "/v1/models"),
        ("llm.acme.example:", "/v1/models"),
        ("llm.acme.example:99999999", "/v1/models"),
        ("llm.acme.example,evil.example", "/v1/models"),
        ("llm.acme.example/v1", "/v1/models"),
        ("llm.acme.example\x00", "/v1/models"),
        ("llm.acme.example" + "x" * 300, "/v1/models"),
        ("llm.acme.exampl\u212a", "/v1/models"),  # the Kelvin sign lowercases to "k"
        ("llm.acme.example:80:80", "/v1/models"),
        # path confusion: what the upstream would normalize into another path
        (None, "/acme/deployments/llama/../llamaX/v1"),
        (None, "/acme/deployments/llamaX/../llama/v1"),
        (None, "/acme/deployments/llamaX/%2e%2e/llama/v1"),
        (None, "/acme/deployments/llamaX/.%2E;/llama/v1"),
        (None, "/acme/deployments/llama/./v1"),
        (None, "/acme/deployments/llama%2Fv1"),
        (None, "/acme/deployments%2Fllama/v1"),
        (None, "/acme/deployments/llama%5Cv1"),
        (None, "/acme/deployments/llama\\v1"),
        (None, "/acme/deployments/llama%252e%252e/v1"),
        (None, "/acme//deployments/llama/v1"),
        (None, "//acme/deployments/llama/v1"),
        (None, "/acme/deployments/llama/v1#frag"),
        (None, "/acme/deployments/llama#/../../x"),
        (None, "acme/deployments/llama/v1"),
        (None, ""),
        (None, "/acme/deployments/llama/" + "x" * MAX_URI),
        (None, "/acme/deployments/llama/%00"),
        ("llm.acme.example", "/v1/../admin"),
        ("llm.acme.example", "/v1/%2e%2e/admin"),
    ],
)
def test_everything_else_matches_nothing(host: str | None, uri: str) -> None:
    assert TABLE.match(host, uri) is None


def test_an_empty_table_matches_nothing() -> None:
    assert RouteTable([]).match("llm.acme.example", "/v1/models") is None
    assert len(TABLE) == 5


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("llm.acme.example", "llm.acme.example"),
        ("LLM.Acme.Example.", "llm.acme.example"),
        ("a-b.c0.example", "a-b.c0.example"),
    ],
)
def test_hosts_are_stored_lowercased_without_the_trailing_dot(value: str, stored: str) -> None:
    assert check_host(value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "", "localhost", "llm.acme.example:8443", "https://llm.acme.example", "*.acme.example",
        "llm..acme.example", "-llm.acme.example", "llm-.acme.example", "llm_x.acme.example",
        "llm.acme.example/", "llm acme.example", "llm.acme.example..", "xn--ñ.example",
        "llm.acme.exampl\u212a",
        "a" * 64 + ".example", ".".join(["abcdefghi"] * 26),
    ],
)  # fmt: skip
def test_hosts_that_are_no_dns_name_are_refused(value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_host(value)
    assert refused.value.code == "invalid_host"


@pytest.mark.parametrize(
    "value", ["/acme/deployments/llama/", "/tgi/", "/a-b_c~d/v1.0/", "/acme/x;y/"]
)
def test_plain_prefixes_are_kept_as_given(value: str) -> None:
    assert check_prefix(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "", "/", "//", "acme/", "/acme", "/acme//x/", "/acme/./x/", "/acme/../x/", "/acme/..;/x/",
        "/acme/%2e%2e/x/", "/acme/%2F/", "/acme\\x/", "/acme/x y/", "/acme/é/", "/acme/x?y/",
        "/acme/x#y/", "/acme/\x00/", "/" + "a/" * 200,
    ],
)  # fmt: skip
def test_prefixes_with_anything_but_plain_segments_are_refused(value: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_prefix(value)
    assert refused.value.code == "invalid_path_prefix"


# -- properties ----------------------------------------------------------------

PROPERTY = settings(max_examples=400, database=None, deadline=None)
BY_NAME = {
    "llama": Binding("acme", "llama", None, "/acme/deployments/llama/"),
    "llama-big": Binding("acme", "llama-big", None, "/acme/deployments/llama/big/"),
}
PROPERTY_TABLE = RouteTable(BY_NAME.values())
# Segments near the bound ones, and the ways of writing a separator or a dot.
segments = st.one_of(
    st.sampled_from(
        ["acme", "deployments", "llama", "big", "v1", "llamaX", "", ".", "..", "%2e", "%2E%2e",
         ".%2e", "..;", "%2F", "%5C", "\\", "%252e", "ll%61ma", "#", "?x", "%00"]
    ),
    st.text(alphabet="abc.%/\\;#?2eEF", max_size=6),
)  # fmt: skip


@PROPERTY
@given(st.lists(segments, max_size=7))
def test_a_match_covers_whole_plain_segments_of_its_prefix(parts: list[str]) -> None:
    """Whatever the path, a match means its decoded segments start with the
    bound prefix's, and hold nothing an upstream could normalize away."""
    uri = "/" + "/".join(parts)
    route = PROPERTY_TABLE.match(None, uri)
    if route is None:
        return
    decoded = [unquote(p) for p in uri.split("?", maxsplit=1)[0][1:].split("/")]
    prefix = BY_NAME[route.name].segments
    assert tuple(decoded[: len(prefix)]) == prefix
    assert "#" not in uri
    assert not any(p.split(";")[0] in {".", ".."} or "/" in p or "%" in p for p in decoded)
    assert "" not in decoded[:-1]


@PROPERTY
@given(
    st.sampled_from(["llm.acme.example", "LLM.ACME.EXAMPLE", "Llm.Acme.Example."]),
    st.one_of(st.none(), st.integers(0, 65535)),
    st.lists(st.sampled_from(["v1", "models", "chat", "..", "%2F"]), max_size=4),
)
def test_the_host_matches_whatever_its_case_trailing_dot_or_port(
    host: str, port: int | None, parts: list[str]
) -> None:
    uri = "/" + "/".join(parts)
    spelled = host if port is None else f"{host}:{port}"
    assert TABLE.match(spelled, uri) == TABLE.match("llm.acme.example", uri)
