"""An OpenAI-compatible model server behind nginx and hubgate, called with the
official ``openai`` client, as deploy/nginx/vllm.conf and the README's "Put it
in front of vLLM" set it up.

Real processes: hubgate under uvicorn, nginx running deploy/nginx/vllm.conf,
and tests/e2e/openai_upstream.py standing in for vLLM. The deployment
``acme/llama`` is bound to the host ``llm.acme.example`` (its ``/v1/`` paths
only) and to the prefix ``/acme/deployments/llama/``; the caller holds an
``hg_`` token and sends it as the client does (``Authorization: Bearer``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from hubgate.access import OrgRole, Principal, ResourceKind, TeamRole, Visibility
from hubgate.audit import Actor
from hubgate.db.models import Org
from hubgate.gate import bindings
from hubgate.orgs import resources, service, team_tokens
from hubgate.runtime import Runtime
from tests.conftest import World
from tests.e2e.conftest import (
    VLLM_SITE,
    bearer,
    personal_token,
    refusal,
    running_nginx,
    running_server,
)
from tests.e2e.openai_upstream import FIRST, MODEL, REST, OpenAIUpstream, openai_upstream

pytestmark = pytest.mark.e2e

HOST = "llm.acme.example"
HUB = "hub.acme.example"
PREFIX = "/acme/deployments/llama/"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Say hello."}
]


@dataclass(frozen=True)
class Callers:
    """Tokens of the seeded world, as clients would hold them."""

    inference: str
    member_read: str
    revoked: str
    outsider: str


def _seed(rt: Runtime, org: Org) -> str:
    """Team research with its private deployment llama, bound by host (``/v1/``
    only) and by prefix; returns the team's inference token."""
    actor, operator = Actor.system("e2e"), Principal.operator()
    with rt.db.transaction() as db:
        org = db.merge(org)
        team = service.create_team(db, actor, operator, org, "research", None)
        llama = resources.create(
            db, actor, operator, org, ResourceKind.DEPLOYMENT, MODEL, Visibility.PRIVATE, "research"
        )
        bindings.bind(db, actor, operator, org, llama, HOST, "/v1/")
        bindings.bind(db, actor, operator, org, llama, None, PREFIX)
        new = team_tokens.create(
            db, actor, operator, org, team, "ci", ["inference"], None, rt.now()
        )
    return new.secret


@pytest.fixture
def callers(world: World) -> Callers:
    admin = world.user("admin@acme.test")
    acme = world.org("acme", admin)
    member = world.user("member@acme.test")
    world.member(acme, member, OrgRole.WRITE)
    inference = _seed(world.rt, acme)
    with world.rt.db.transaction() as db:
        org = db.merge(acme)
        team = service.get_team(db, org, "research")
        service.set_team_member(
            db, Actor.system("e2e"), Principal.operator(), org, team, db.merge(member),
            TeamRole.WRITE,
        )  # fmt: skip
    return Callers(
        inference=inference,
        member_read=personal_token(world.rt, member, "read"),
        revoked=personal_token(world.rt, member, "write", revoked=True),
        outsider=personal_token(world.rt, world.user("outsider@other.test"), "write"),
    )


@pytest.fixture
def hubgate_url(database_url: str) -> Iterator[str]:
    """hubgate reading the routed host from nginx's X-Original-Host."""
    with running_server(database_url, {"HUBGATE_HOST_HEADER": "x-original-host"}) as url:
        yield url


@pytest.fixture
def vllm() -> Iterator[OpenAIUpstream]:
    with openai_upstream() as upstream:
        yield upstream


@pytest.fixture
def gate(callers: Callers, nginx: str, hubgate_url: str, vllm: OpenAIUpstream) -> Iterator[str]:
    """nginx running deploy/nginx/vllm.conf (seeded first: servers start on a ready database)."""
    with running_nginx(
        nginx, hubgate_url=hubgate_url, upstream=vllm.address, site=VLLM_SITE
    ) as url:
        yield url


def client(gate: str, host: str, path: str, api_key: str) -> openai.OpenAI:
    """The official client; ``Host`` picks nginx's server block, as DNS would."""
    return openai.OpenAI(
        base_url=f"{gate}{path}", api_key=api_key, default_headers={"Host": host},
        max_retries=0, timeout=2 * 60.0,
    )  # fmt: skip


# -- allowed -------------------------------------------------------------------


def test_chat_completion_through_the_host_binding(
    gate: str, callers: Callers, vllm: OpenAIUpstream
) -> None:
    with client(gate, HOST, "/v1", callers.inference) as llm:
        completion = llm.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert completion.choices[0].message.content == FIRST + REST
    seen = vllm.requests[-1]
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["x-hubgate-org"] == ["acme"]
    assert seen.headers["x-hubgate-user"][0].startswith("token:")
    assert "authorization" not in seen.headers


def test_models_are_listed_unfiltered_through_the_host_binding(
    gate: str, callers: Callers, vllm: OpenAIUpstream
) -> None:
    with client(gate, HOST, "/v1", callers.inference) as llm:
        models = llm.models.list()

    assert [m.id for m in models] == [MODEL]
    assert vllm.requests[-1].path == "/v1/models"


def test_the_stream_is_not_buffered_through_the_prefix_binding(
    gate: str, callers: Callers, vllm: OpenAIUpstream
) -> None:
    """The upstream holds the rest of the answer until the client has the first
    chunk; through a buffering proxy the first chunk would never come first."""
    with (
        client(gate, HUB, f"{PREFIX}v1", callers.inference) as llm,
        llm.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream,
    ):
        chunks = iter(stream)
        first = next(chunks)
        vllm.release.set()
        rest = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]

    assert first.choices[0].delta.content == FIRST
    assert rest == [REST]
    assert vllm.streams == [True]
    assert vllm.requests[-1].path == "/v1/chat/completions"  # nginx dropped the prefix


# -- refused -------------------------------------------------------------------

# (credential, status, reason) through the host binding; one running stack.
REFUSALS = [
    ("revoked", 401, "token_revoked"),
    ("bogus", 401, "token_invalid"),
    ("outsider", 403, "not_member"),
    ("member_read", 403, "scope_insufficient"),
]


def test_refusals_reach_the_client_with_a_reason_and_never_the_model_server(
    gate: str, callers: Callers, vllm: OpenAIUpstream
) -> None:
    answers = []
    for credential, _status, _reason in REFUSALS:
        secret = getattr(callers, credential, "hg_bogus")
        with (
            client(gate, HOST, "/v1", secret) as llm,
            pytest.raises(openai.APIStatusError) as refused,
        ):
            llm.chat.completions.create(model=MODEL, messages=MESSAGES)
        response = refused.value.response
        answers.append((credential, response.status_code, response.headers["x-hubgate-reason"]))
    anonymous = httpx.post(f"{gate}/v1/chat/completions", headers={"Host": HOST}, json={})

    assert answers == REFUSALS
    assert refusal(anonymous) == (401, "sign_in_required")
    assert vllm.requests == []


def test_unbound_paths_and_hosts_fail_closed(
    gate: str, callers: Callers, world: World, vllm: OpenAIUpstream
) -> None:
    """``/metrics`` lies outside the host's ``/v1/`` binding; once the host route
    is removed, ``/v1/`` on that host is unbound too: both ``route_unmapped``."""
    unbound_path = httpx.get(f"{gate}/metrics", headers={"Host": HOST} | bearer(callers.inference))
    _unbind_host(world.rt)
    unbound_host = httpx.get(
        f"{gate}/v1/models", headers={"Host": HOST} | bearer(callers.inference)
    )

    assert refusal(unbound_path) == (403, "route_unmapped")
    assert refusal(unbound_host) == (403, "route_unmapped")
    assert vllm.requests == []


def _unbind_host(rt: Runtime) -> None:
    actor, operator = Actor.system("e2e"), Principal.operator()
    with rt.db.transaction() as db:
        org = service.get_org(db, "acme")
        llama = resources.get(db, org, ResourceKind.DEPLOYMENT, MODEL)
        [host_route] = [r for r in bindings.routes_of(db, operator, llama) if r.host == HOST]
        bindings.unbind(db, actor, operator, org, llama, host_route.id)
