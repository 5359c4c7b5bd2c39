"""Forward-auth's cache never answers otherwise than the database would.

A property test drives random sequences of changes (through the services and
straight through SQL, as SCIM, a cascade or an operator's script would) and
compares every cached answer with :func:`hubgate.gate.answer.evaluate` computed
afresh. The trigger inventory is checked against the live schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, text, update

from hubgate.access import OrgRole, ResourceKind, TeamRole, Visibility
from hubgate.accounts import sessions, tokens
from hubgate.audit import Actor
from hubgate.db import change_triggers
from hubgate.db.models import (
    Membership,
    OrgSso,
    Resource,
    SsoAuthentication,
    TeamMembership,
    Token,
    WebSession,
)
from hubgate.gate.answer import evaluate
from hubgate.gate.asgi import Gate, GateRequest
from hubgate.gate.changes import for_url
from hubgate.gate.paths import map_request
from hubgate.operator import operator_principal
from hubgate.orgs import resources, service
from hubgate.runtime import Runtime
from tests.conftest import World, run_async


def test_every_watched_table_has_its_triggers(rt: Runtime) -> None:
    """A migration that rebuilds a watched table on SQLite drops its triggers."""
    expected = set().union(*(change_triggers.expected_names(w) for w in change_triggers.WATCHED))
    with rt.db.engine.connect() as connection:
        assert change_triggers.installed(connection) == expected


def _seq(rt: Runtime) -> int:
    with rt.db.engine.connect() as connection:
        read = change_triggers.read_statement(connection.dialect.name)
        return int(connection.execute(text(read)).scalar_one())


def test_a_use_of_a_session_or_token_moves_nothing_a_revocation_does(
    rt: Runtime, world: World
) -> None:
    """Touching ``last_seen_at``/``last_used_at`` must not empty every cache."""
    user = world.user("ann@acme.test")
    with rt.db.transaction() as db:
        token = tokens.issue(db, user_id=user.id, name="t", scopes="read", expires_at=None)
        cookie, session_id = sessions.start(db, user.id, rt.lifetimes, rt.now())
    before = _seq(rt)
    with rt.db.transaction() as db:
        db.execute(update(Token).values(last_used_at=rt.now()))
        db.execute(update(WebSession).values(last_seen_at=rt.now()))
    assert _seq(rt) == before
    with rt.db.transaction() as db:
        tokens.revoke(db, db.get_one(Token, token.row.id), rt.now())
    assert _seq(rt) > before
    moved = _seq(rt)
    with rt.db.transaction() as db:
        sessions.end_by_id(db, session_id)
    assert _seq(rt) > moved


def test_a_new_sso_authentication_moves_nothing_its_end_does(rt: Runtime, world: World) -> None:
    """Every sign-in inserts one: that must not empty every instance's cache (the
    gate keeps no ``sso_required`` refusal, the one answer an insert can change)."""
    user = world.user("ann@acme.test")
    org = world.org("acme", user)
    with rt.db.transaction() as db:
        _, session_id = sessions.start(db, user.id, rt.lifetimes, rt.now())
    before = _seq(rt)
    with rt.db.transaction() as db:
        db.execute(
            insert(SsoAuthentication).values(
                session_id=session_id, user_id=user.id, org_id=org.id, authenticated_at=rt.now()
            )
        )
    assert _seq(rt) == before
    with rt.db.transaction() as db:
        db.execute(delete(SsoAuthentication))
    assert _seq(rt) > before


def test_a_missing_counter_row_makes_the_sequence_unknown(rt: Runtime) -> None:
    """A bump to a missing row would be lost, so the reader must fail closed."""
    sequence = for_url(rt.settings.database_url)
    assert sequence is not None
    row = 7 if rt.db.engine.dialect.name == "postgresql" else 1  # a shard, or the row
    try:
        assert run_async(sequence.current()) == _seq(rt)
        with rt.db.transaction() as db:
            db.execute(text(f"DELETE FROM {change_triggers.TABLE} WHERE id = {row}"))
        assert run_async(sequence.current()) is None
    finally:
        sequence.close()
        with rt.db.transaction() as db:
            db.execute(text(f"INSERT INTO {change_triggers.TABLE} (id, seq) VALUES ({row}, 0)"))


def test_concurrent_writers_do_not_wait_on_one_counter_row(rt: Runtime) -> None:
    """PostgreSQL: two open transactions that both bump the sequence both commit
    (each locks the shard its transaction id picks), and the sum counts both."""
    if rt.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes one transaction at a time anyway")
    bump = text("UPDATE orgs SET name = name WHERE id = -1")  # no row; the trigger fires
    shard = text(f"SELECT txid_current() % {change_triggers.SHARDS}")
    before = _seq(rt)
    with rt.db.engine.connect() as first, rt.db.engine.connect() as second:
        first.begin()
        taken = first.execute(shard).scalar_one()
        first.execute(bump)
        for _ in range(3):  # another test's transactions may take the ids between
            second.begin()
            if second.execute(shard).scalar_one() != taken:
                break
            second.rollback()
        second.execute(text("SET LOCAL lock_timeout = '5s'"))
        second.execute(bump)  # would wait for ``first`` on a single counter row
        second.commit()
        assert _seq(rt) == before + 1
        first.commit()
    assert _seq(rt) == before + 2


@dataclass
class Fixture:
    rt: Runtime
    org_id: int
    team_id: int
    user_ids: list[int]
    headers: list[dict[bytes, bytes]]
    session_ids: list[int]
    token_ids: list[int]


REQUESTS = [
    (f"/acme/{plural}/{name}{suffix}", method)
    for plural, name in (
        ("models", "weights"), ("models", "public"), ("deployments", "chat"), ("models", "absent"),
    )
    for suffix, method in (("", "GET"), ("/x", "PUT"), ("", "DELETE"), ("/v1/chat", "POST"))
] + [("/acme/../weights", "GET")]  # fmt: skip


@pytest.fixture
def fixture(rt: Runtime, world: World) -> Fixture:
    admin = world.user("admin@acme.test")
    org = world.org("acme", admin)
    people = [world.user(f"p{i}@acme.test") for i in range(3)]
    for person in people:
        world.member(org, person, OrgRole.WRITE)
    actor, operator = Actor.system(), operator_principal()
    with rt.db.transaction() as db:
        merged = db.merge(org)
        team = service.create_team(db, actor, operator, merged, "research", None)
        for kind, name, visibility, team_name in (
            (ResourceKind.MODEL, "weights", Visibility.PRIVATE, None),
            (ResourceKind.MODEL, "public", Visibility.PUBLIC, None),
            (ResourceKind.DEPLOYMENT, "chat", Visibility.PRIVATE, "research"),
        ):
            resources.create(db, actor, operator, merged, kind, name, visibility, team_name)
        db.add(OrgSso(org_id=org.id, mode="off", session_timeout_seconds=3600))
        headers: list[dict[bytes, bytes]] = [{}, {b"authorization": b"Bearer hg_nonsense"}]
        session_ids, token_ids = [], []
        for person in people:
            for scopes in ("read", "write"):
                new = tokens.issue(
                    db, user_id=person.id, name=scopes, scopes=scopes, expires_at=None
                )
                headers.append({b"authorization": f"Bearer {new.secret}".encode()})
                token_ids.append(new.row.id)
            cookie, session_id = sessions.start(db, person.id, rt.lifetimes, rt.now())
            headers.append({b"cookie": f"{sessions.COOKIE}={cookie}".encode()})
            session_ids.append(session_id)
        team_token = tokens.issue(
            db, user_id=None, name="ci", scopes="inference", expires_at=None,
            team_id=team.id, org_id=org.id,
        )  # fmt: skip
        headers.append({b"authorization": f"Bearer {team_token.secret}".encode()})
        token_ids.append(team_token.row.id)
        team_id = team.id
    return Fixture(rt, org.id, team_id, [p.id for p in people], headers, session_ids, token_ids)


def _changes(f: Fixture) -> st.SearchStrategy[object]:
    """One change each, as a statement to run in its own transaction."""
    user = st.sampled_from(f.user_ids)
    role = st.sampled_from([r.label for r in OrgRole])
    member = Membership.org_id == f.org_id
    return st.one_of(
        st.builds(lambda u, r: update(Membership).where(member, Membership.user_id == u)
                  .values(role=r), user, role),
        st.builds(lambda u, on: update(Membership).where(member, Membership.user_id == u)
                  .values(deactivated_at=None if on else f.rt.now()), user, st.booleans()),
        st.builds(lambda u: delete(Membership).where(member, Membership.user_id == u), user),
        st.builds(lambda u, r: insert(TeamMembership).values(team_id=f.team_id, user_id=u, role=r),
                  user, st.sampled_from([r.label for r in TeamRole])),
        st.builds(lambda u: delete(TeamMembership).where(TeamMembership.user_id == u), user),
        st.builds(lambda v, t: update(Resource).where(Resource.name == "weights")
                  .values(visibility=v, team_id=f.team_id if t else None),
                  st.sampled_from([v.value for v in Visibility]), st.booleans()),
        st.builds(lambda t: update(Token).where(Token.id == t).values(revoked_at=f.rt.now()),
                  st.sampled_from(f.token_ids)),
        st.builds(lambda s: update(WebSession).where(WebSession.id == s)
                  .values(expires_at=f.rt.now() - timedelta(seconds=1)),
                  st.sampled_from(f.session_ids)),
        st.builds(lambda m, o: update(OrgSso).where(OrgSso.org_id == f.org_id)
                  .values(mode=m, optional=o), st.sampled_from(["off", "basic", "managed"]),
                  st.booleans()),
        st.builds(lambda i, age: insert(SsoAuthentication).values(
            session_id=f.session_ids[i], user_id=f.user_ids[i], org_id=f.org_id,
            authenticated_at=f.rt.now() - timedelta(minutes=age)),
            st.integers(0, 2), st.sampled_from([1, 90])),
        st.builds(lambda: delete(SsoAuthentication)),
    )  # fmt: skip


def _restore(f: Fixture) -> None:
    """Each example starts from the seeded state (it is a change too)."""
    everyone = [{"org_id": f.org_id, "user_id": u, "role": "write"} for u in f.user_ids]
    for change in (
        update(Token).values(revoked_at=None),
        update(WebSession).values(expires_at=f.rt.now() + f.rt.lifetimes.absolute),
        delete(Membership).where(Membership.user_id.in_(f.user_ids)),
        insert(Membership).values(everyone),
        delete(TeamMembership),
        delete(SsoAuthentication),
        update(OrgSso).values(mode="off", optional=False),
        update(Resource)
        .where(Resource.name == "weights")
        .values(visibility="private", team_id=None),
    ):
        _apply(f.rt, change)


def _apply(rt: Runtime, change: object) -> None:
    try:
        with rt.db.transaction() as db:
            db.execute(change)  # type: ignore[call-overload]
    except Exception as exc:  # a duplicate row or a constraint: the change did not happen
        if "constraint" not in str(exc).lower() and "unique" not in str(exc).lower():
            raise


def test_an_sso_required_refusal_ends_with_the_sign_in_that_follows_it(
    fixture: Fixture,
) -> None:
    """The sign-in's SSO authentication does not move the sequence, so the refusal
    it ends must not have been kept: the next check, by the session or by the
    person's token, is allowed."""
    f = fixture
    _restore(f)
    _apply(f.rt, update(OrgSso).values(mode="basic", optional=False))
    gate = Gate(app=None, runtime=f.rt)  # type: ignore[arg-type]
    token, cookie = f.headers[3], f.headers[4]  # the first person's write token, session

    def check(headers: dict[bytes, bytes]) -> tuple[int, str]:
        raw = [(b"x-original-uri", b"/acme/models/weights"), (b"x-original-method", b"GET")]
        answer = run_async(gate.answer(GateRequest([*raw, *headers.items()])))
        return answer.status, answer.reason

    try:
        assert check(cookie) == check(cookie) == (401, "sso_required")
        assert check(token) == (401, "sso_required")
        _apply(f.rt, insert(SsoAuthentication).values(
            session_id=f.session_ids[0], user_id=f.user_ids[0], org_id=f.org_id,
            authenticated_at=f.rt.now(),
        ))  # fmt: skip
        assert check(cookie) == (200, "allow")
        assert check(token) == (200, "allow")
    finally:
        gate.close()


@settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(data=st.data())
def test_cached_answers_equal_fresh_ones_over_random_changes(
    fixture: Fixture, data: st.DataObject
) -> None:
    f = fixture
    gate = Gate(app=None, runtime=f.rt)  # type: ignore[arg-type]
    changes = _changes(f)
    check = st.tuples(st.sampled_from(range(len(f.headers))), st.sampled_from(REQUESTS))
    steps: list[object] = []
    for _ in range(data.draw(st.integers(10, 60), label="steps")):
        change = data.draw(st.integers(0, 3), label="change?") == 0  # one step in four
        steps.append(data.draw(changes) if change else data.draw(check))
    _restore(f)

    async def run() -> None:
        for drawn in steps:
            if not isinstance(drawn, tuple):
                _apply(f.rt, drawn)
                continue
            which, (uri, method) = drawn
            raw = [(b"x-original-uri", uri.encode()), (b"x-original-method", method.encode())]
            request = GateRequest([*raw, *f.headers[which].items()])
            cached = await gate.answer(request)
            route = map_request(uri, method)
            if route is None:
                assert (cached.status, cached.reason) == (403, "route_unmapped")
                continue
            fresh = evaluate(f.rt, request.authorization, request.cookie, route)
            assert (cached.status, cached.reason, cached.headers) == (
                fresh.status, fresh.reason, fresh.headers,
            ), (which, uri, method)  # fmt: skip

    # The steps are drawn first: Hypothesis draws on the test's thread only.
    try:
        run_async(run())
    finally:
        gate.close()
