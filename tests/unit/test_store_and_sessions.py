"""The short-lived store, sessions and throttling against a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hubgate import store
from hubgate.accounts import sessions, throttle
from hubgate.errors import TooManyRequests
from hubgate.runtime import Runtime
from tests.conftest import World


def test_store_values_are_single_use_and_expire(rt: Runtime) -> None:
    with rt.db.transaction() as db:
        store.put(db, "test", "k1", {"a": 1}, timedelta(minutes=5))
        store.put(db, "test", "k2", {"a": 2}, timedelta(minutes=5))
    with rt.db.transaction() as db:
        assert store.consume(db, "test", "k1") == {"a": 1}
        assert store.consume(db, "test", "k1") is None
        assert store.consume(db, "other", "k2") is None
        later = rt.now() + timedelta(minutes=6)
        assert store.consume(db, "test", "k2", later) is None


def test_sessions_end_at_the_absolute_lifetime(rt: Runtime, world: World) -> None:
    user = world.user("s@example.com")
    now = rt.now()
    with rt.db.transaction() as db:
        cookie, _row = sessions.start(db, user.id, rt.lifetimes, now)
    with rt.db.transaction() as db:
        assert sessions.resolve(db, cookie, rt.lifetimes, now + timedelta(minutes=30)) is not None
    with rt.db.transaction() as db:
        assert sessions.resolve(db, cookie + "x", rt.lifetimes, now) is None
        end = now + rt.lifetimes.absolute
        assert sessions.resolve(db, cookie, rt.lifetimes, end) is None
    with rt.db.transaction() as db:
        assert sessions.resolve(db, cookie, rt.lifetimes, now) is None, "an ended session is gone"


def test_throttle_counts_per_window(rt: Runtime) -> None:
    limits = throttle.Limits(window=timedelta(minutes=1), per_account=2, per_address=5)
    now = rt.now()
    with rt.db.transaction() as db:
        for _ in range(2):
            throttle.check(db, limits, "acct", "10.0.0.1", now)
            throttle.failed(db, limits, "acct", "10.0.0.1", now)
        with pytest.raises(TooManyRequests):
            throttle.check(db, limits, "acct", "10.0.0.1", now)
        throttle.check(db, limits, "other", "10.0.0.1", now)
        assert throttle.failures(db, "address:10.0.0.1") == 2
        later = now + timedelta(minutes=2)
        throttle.check(db, limits, "acct", "10.0.0.1", later)
        throttle.failed(db, limits, "acct", "10.0.0.1", later)
        assert throttle.failures(db, "account:acct") == 1
        assert throttle.failures(db, "address:10.0.0.1") == 1, "a new window starts over"


def test_replay_store_lets_only_the_first_use_through(rt: Runtime) -> None:
    until = rt.now() + timedelta(minutes=5)
    with rt.db.transaction() as db:
        seen = store.ReplayStore(db, "test")
        assert seen.first_use("a", until) is True
        assert seen.first_use("a", until) is False
        assert seen.taken == [("a", until)]
        assert store.ReplayStore(db, "other").first_use("a", until) is True
    with rt.db.transaction() as db:
        assert store.ReplayStore(db, "test").first_use("a", until) is False
