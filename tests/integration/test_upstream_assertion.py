"""Signed identity for upstreams: ``/auth/check`` with ``HUBGATE_UPSTREAM_ASSERTION``,
the JWK Set route, key rotation (CLI and schedule) and the lazy first key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from joserfc import jws
from sqlalchemy import select

from hubgate import jobs, signing_keys
from hubgate.access import CredentialKind, OrgRole, ResourceKind, Visibility
from hubgate.accounts import tokens
from hubgate.app import create_app
from hubgate.audit import Actor
from hubgate.cli.root import main
from hubgate.db.models import AuditEvent, SigningKey
from hubgate.gate.assertion import HEADER, Minter, Subject
from hubgate.orgs import resources
from hubgate.principals import Credential, principal_for
from hubgate.runtime import Runtime, build_runtime
from hubgate.upstream import AssertionInvalid, AssertionVerifier
from tests.conftest import World, make_settings

MEMBER = "member@acme.test"
CHAT = "acme/deployment/chat"


@pytest.fixture
def on(database_url: str) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, upstream_assertion=True))
    yield runtime
    runtime.db.engine.dispose()


@pytest.fixture
def member_token(on: Runtime) -> str:
    """acme: a private deployment ``chat``, a public model ``open``; a write member."""
    world = World(on)
    admin, member = world.user("admin@acme.test"), world.user(MEMBER)
    org = world.org("acme", admin)
    world.member(org, member, OrgRole.WRITE)
    with on.db.transaction() as db:
        owner = principal_for(db, Credential(kind=CredentialKind.SESSION, user_id=admin.id), org.id)
        actor = Actor("admin@acme.test", user_id=admin.id)
        for kind, name, visibility in [
            (ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE),
            (ResourceKind.MODEL, "open", Visibility.PUBLIC),
        ]:
            resources.create(db, actor, owner, db.merge(org), kind, name, visibility)
        return tokens.issue(db, user_id=member.id, name="w", scopes="write", expires_at=None).secret


@pytest.fixture
def gate(on: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=on)) as client:
        yield client


def _check(client: TestClient, uri: str, method: str = "POST", **headers: str) -> dict[str, str]:
    response = client.get(
        "/auth/check", headers={"x-original-uri": uri, "x-original-method": method, **headers}
    )
    return dict(response.headers) | {"status": str(response.status_code)}


def _verifier(client: TestClient, audience: str = CHAT) -> AssertionVerifier:
    """The model server's verifier, fetching the key set from the app in-process."""
    return AssertionVerifier("http://testserver", audience, client=client)


def test_an_allowed_call_carries_a_verifiable_assertion(
    gate: TestClient, member_token: str
) -> None:
    answer = _check(gate, "/acme/deployments/chat/predict", authorization=f"Bearer {member_token}")

    assert answer["status"] == "200"
    identity = _verifier(gate).verify(answer[HEADER.lower()])
    assert (identity.subject, identity.org, identity.action) == (MEMBER, "acme", "call")
    assert (identity.resource, identity.credential) == (CHAT, "personal_token")
    claims = jws.extract_compact(answer[HEADER.lower()].encode()).payload
    assert json.loads(claims)["iss"] == "http://testserver"


def test_the_assertion_is_reused_per_caller_and_resource(
    gate: TestClient, member_token: str
) -> None:
    bearer = f"Bearer {member_token}"
    first = _check(gate, "/acme/deployments/chat/predict", authorization=bearer)[HEADER.lower()]
    again = _check(gate, "/acme/deployments/chat/predict", authorization=bearer)[HEADER.lower()]
    read = _check(gate, "/acme/deployments/chat", "GET", authorization=bearer)[HEADER.lower()]
    assert first == again
    assert _verifier(gate).verify(read).action == "read"


def test_an_anonymous_reader_of_a_public_model_gets_an_assertion_without_subject(
    gate: TestClient, member_token: str
) -> None:
    answer = _check(gate, "/acme/models/open", "GET")
    identity = _verifier(gate, "acme/model/open").verify(answer[HEADER.lower()])
    assert identity.anonymous and identity.credential == "anonymous"


def test_refusals_carry_no_assertion(gate: TestClient, member_token: str) -> None:
    answer = _check(gate, "/acme/deployments/chat/predict")
    assert answer["status"] == "401"
    assert HEADER.lower() not in answer


def test_an_assertion_for_one_resource_is_refused_at_another(
    gate: TestClient, member_token: str
) -> None:
    answer = _check(gate, "/acme/deployments/chat/predict", authorization=f"Bearer {member_token}")
    with pytest.raises(AssertionInvalid) as refused:
        _verifier(gate, "acme/deployment/other").verify(answer[HEADER.lower()])
    assert refused.value.reason == "audience_mismatch"


def test_setting_off_means_no_header_and_an_empty_key_set(
    client: TestClient, rt: Runtime, world: World
) -> None:
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    with rt.db.transaction() as db:
        owner = principal_for(db, Credential(kind=CredentialKind.SESSION, user_id=admin.id), org.id)
        resources.create(
            db, Actor("a", user_id=admin.id), owner, db.merge(org), ResourceKind.MODEL, "open",
            Visibility.PUBLIC,
        )  # fmt: skip
    answer = _check(client, "/acme/models/open", "GET")
    jwks = client.get("/.well-known/jwks.json")

    assert answer["status"] == "200"
    assert HEADER.lower() not in answer
    assert jwks.json() == {"keys": []}
    assert jwks.headers["content-type"] == "application/jwk-set+json"


# -- the key store ----------------------------------------------------------------

T0 = datetime.fromisoformat("2026-12-06T12:00:00+00:00")


def _minter(rt: Runtime, at: list[float]) -> Minter:
    return Minter(rt.db, rt.sealer, issuer="http://testserver", lifetime=60, clock=lambda: at[0])


def _kid(token: str) -> str:
    kid = jws.extract_compact(token.encode()).headers()["kid"]
    assert isinstance(kid, str)
    return kid


def _published(rt: Runtime, at: datetime) -> list[str]:
    with rt.db.transaction() as db:
        return [k["kid"] for k in signing_keys.published_jwks(db, at)["keys"]]


def _verifier_at(rt: Runtime, moment: datetime) -> AssertionVerifier:
    """A model server's verifier at ``moment``, holding the key set published then."""
    with rt.db.transaction() as db:
        body = json.dumps(signing_keys.published_jwks(db, moment)).encode()
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=body))
    return AssertionVerifier(
        "http://testserver", CHAT, client=httpx.Client(transport=transport),
        clock=moment.timestamp,
    )  # fmt: skip


SUBJECT = Subject(MEMBER, "session", "acme", "call", CHAT)


def test_the_first_key_is_made_lazily_and_once(on: Runtime) -> None:
    at = [T0.timestamp()]
    first, second = _minter(on, at), _minter(on, at)  # two instances
    kids = {_kid(first.mint(SUBJECT)), _kid(second.mint(SUBJECT))}
    with on.db.transaction() as db:
        stored = db.scalars(select(SigningKey.kid)).all()
    assert len(kids) == 1 and list(kids) == stored


def test_rotation_publishes_before_signing_and_keeps_the_old_key_until_its_tokens_expire(
    on: Runtime,
) -> None:
    def minted_at(moment: datetime) -> str:
        return _minter(on, [moment.timestamp()]).mint(SUBJECT)

    def kid_minted_at(moment: datetime) -> str:
        """The key a newly started instance signs with at ``moment``."""
        return _kid(minted_at(moment))

    old = kid_minted_at(T0)
    with on.db.transaction() as db:
        new = signing_keys.rotate(db, on.sealer, Actor.system(), T0).kid

    switch = T0 + signing_keys.PUBLISH_AHEAD
    assert _published(on, T0) == [old, new]  # published at once ...
    assert kid_minted_at(T0) == old  # ... while the old key signs on
    assert kid_minted_at(switch - timedelta(seconds=1)) == old
    assert kid_minted_at(switch) == new

    last_old, later = minted_at(switch - timedelta(seconds=1)), switch + timedelta(seconds=50)
    assert _verifier_at(on, later).verify(last_old).subject == MEMBER  # old key still verifies
    keep = switch + signing_keys.KEEP_AFTER_RETIRE
    assert _published(on, keep - timedelta(seconds=1)) == [old, new]
    assert _published(on, keep) == [new]
    assert signing_keys.prune(on.db, keep) == 1


def test_the_schedule_rotates_a_key_once_it_is_old(on: Runtime) -> None:
    signing_keys.ensure_signer(on.db, on.sealer, T0)
    every = timedelta(days=30)
    assert not signing_keys.rotate_if_due(on.db, on.sealer, T0 + timedelta(days=29), every)
    assert signing_keys.rotate_if_due(on.db, on.sealer, T0 + every, every)
    assert not signing_keys.rotate_if_due(on.db, on.sealer, T0 + every, every)


def test_the_worker_job_runs_when_the_setting_is_on(on: Runtime, rt: Runtime) -> None:
    assert "signing-keys" in [job.name for job in jobs.background_jobs(on)]
    assert "signing-keys" not in [job.name for job in jobs.background_jobs(rt)]
    assert jobs.turn_signing_keys(on) is False  # no key yet: nothing to rotate
    signing_keys.ensure_signer(on.db, on.sealer, on.now() - timedelta(days=30))
    assert jobs.turn_signing_keys(on) is True
    assert jobs.turn_signing_keys(on) is False


def test_an_instance_that_loses_the_race_uses_the_winners_key(
    on: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The losing instance read the store before the winner's insert: it saw no key
    and the same next generation. Its insert fails on the unique ``generation``,
    and it neither errs nor makes a second key."""
    signing_keys.ensure_signer(on.db, on.sealer, T0)  # the winner
    monkeypatch.setattr(signing_keys, "_next_generation", lambda db: 1)
    monkeypatch.setattr(signing_keys, "load_signers", lambda db, sealer, now: [])

    signing_keys.ensure_signer(on.db, on.sealer, T0)
    rotated = signing_keys.rotate_if_due(on.db, on.sealer, T0 + timedelta(days=1), timedelta(0))

    assert rotated is False
    with on.db.transaction() as db:
        assert len(signing_keys.all_keys(db)) == 1


def test_cli_rotates_and_lists(database_url: str, on: Runtime) -> None:
    signing_keys.ensure_signer(on.db, on.sealer, on.now())
    runner = CliRunner(env={"HUBGATE_ENV": "dev", "HUBGATE_DATABASE_URL": database_url})
    rotated = runner.invoke(main, ["keys", "rotate", "--json"])
    listed = runner.invoke(main, ["keys", "list", "--json"])

    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    keys = json.loads(listed.stdout)
    assert [k["kid"] for k in keys][-1] == new["kid"]
    assert keys[0]["retired_at"] == new["activated_at"]
    leaked = json.loads(runner.invoke(main, ["keys", "rotate", "--now", "--json"]).stdout)
    with on.db.transaction() as db:
        published = [k["kid"] for k in signing_keys.published_jwks(db, on.now())["keys"]]
        events = [e.action for e in db.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert published == [leaked["kid"]]  # the new key alone, signing at once
    assert events == ["signing_key.created", "signing_key.rotated", "signing_key.rotated"]
