"""The pure rules of SSO freshness (hubgate.freshness): when an org's SSO binds
a credential, and until when one SSO authentication counts (DESIGN.md §1 "basic")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubgate.access import CredentialKind, SsoState
from hubgate.freshness import SsoRule, credential_bound, fresh_until, sso_binds, status_at

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
BASIC = SsoRule("basic", False, int(WEEK.total_seconds()))


@pytest.mark.parametrize(
    ("mode", "optional", "binds"),
    [
        (None, None, False),  # the org has no SSO settings
        ("off", False, False),
        ("basic", False, True),
        ("managed", False, True),
        ("basic", True, False),  # the optional roll-out blocks nothing
    ],
)
def test_sso_binds_when_on_and_not_optional(mode: str | None, optional: bool, binds: bool) -> None:
    assert sso_binds(mode, optional) is binds
    assert SsoRule(mode, optional, 3600).binds is binds


def test_sessions_and_personal_tokens_of_members_are_bound() -> None:
    for kind in (CredentialKind.SESSION, CredentialKind.PERSONAL_TOKEN):
        assert credential_bound(kind, 7, BASIC, external=False)


def test_team_tokens_collaborators_and_the_anonymous_are_not_bound() -> None:
    assert not credential_bound(CredentialKind.TEAM_TOKEN, 7, BASIC, external=False)
    assert not credential_bound(CredentialKind.ANONYMOUS, None, BASIC, external=False)
    assert not credential_bound(CredentialKind.SESSION, 7, BASIC, external=True)
    assert not credential_bound(CredentialKind.SESSION, None, BASIC, external=False)


def test_nothing_is_bound_where_sso_does_not_bind() -> None:
    optional = BASIC._replace(optional=True)
    assert not credential_bound(CredentialKind.SESSION, 7, optional, external=False)
    off = BASIC._replace(mode="off")
    assert not credential_bound(CredentialKind.SESSION, 7, off, external=False)
    assert not credential_bound(
        CredentialKind.SESSION, 7, SsoRule(None, None, None), external=False
    )


def test_an_authentication_counts_for_the_org_timeout() -> None:
    assert fresh_until(AT, None, WEEK) == AT + WEEK
    assert status_at(AT + WEEK - timedelta(seconds=1), (AT, None), WEEK).state is SsoState.FRESH
    assert status_at(AT + WEEK, (AT, None), WEEK).state is SsoState.STALE
    assert status_at(AT + WEEK + timedelta(days=1), (AT, None), WEEK).state is SsoState.STALE


def test_the_idp_session_ends_it_sooner_never_later() -> None:
    sooner = AT + timedelta(hours=8)
    assert fresh_until(AT, sooner, WEEK) == sooner
    capped = status_at(AT, (AT, sooner), WEEK)
    assert capped.idp_capped and capped.timeout == WEEK and capped.fresh_until == sooner
    assert not status_at(AT, (AT, None), WEEK).idp_capped
    assert not status_at(AT, (AT, AT + WEEK + timedelta(days=1)), WEEK).idp_capped
    assert status_at(sooner - timedelta(seconds=1), (AT, sooner), WEEK).state is SsoState.FRESH
    assert status_at(sooner, (AT, sooner), WEEK).state is SsoState.STALE
    later = AT + timedelta(days=30)
    assert fresh_until(AT, later, WEEK) == AT + WEEK
    assert status_at(AT + WEEK, (AT, later), WEEK).state is SsoState.STALE


def test_a_fresh_status_says_until_when_and_no_authentication_is_stale() -> None:
    status = status_at(AT + timedelta(hours=1), (AT, None), WEEK)
    assert status.state is SsoState.FRESH and status.fresh_until == AT + WEEK
    missing = status_at(AT, None, WEEK)
    assert missing.state is SsoState.STALE and missing.fresh_until is None
