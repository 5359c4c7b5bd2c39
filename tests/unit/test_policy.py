"""The pure rules of an org's SSO policy (hubgate.sso.policy, DESIGN.md §1 "SSO
mode"): how a mode is spelled, what switching to it needs, the session timeout's
bounds, when a connection may become active or be switched off."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hubgate.errors import BadRequest
from hubgate.sso.policy import (
    Policy,
    SsoMode,
    leaves_no_way_in,
    may_activate,
    mode_refusal,
    parse_mode,
    timeout_refusal,
)


@pytest.mark.parametrize(
    ("name", "mode", "optional"),
    [
        ("off", SsoMode.OFF, False),
        ("basic", SsoMode.BASIC, False),
        ("basic-optional", SsoMode.BASIC, True),
        ("managed", SsoMode.MANAGED, False),
    ],
)
def test_a_mode_is_spelled_back_as_it_was_given(name: str, mode: SsoMode, optional: bool) -> None:
    assert parse_mode(name) == (mode, optional)
    assert Policy(org_id=1, mode=mode, optional=optional).name == name


def test_an_unknown_mode_is_refused() -> None:
    for name in ("enforced", "Managed", "", "optional"):
        with pytest.raises(BadRequest) as refused:
            parse_mode(name)
        assert refused.value.code == "invalid_mode"


def test_sso_needs_an_active_connection_and_managed_mode_a_verified_domain() -> None:
    assert mode_refusal(SsoMode.OFF, active_connection=False, verified_domain=False) is None
    for mode in (SsoMode.BASIC, SsoMode.MANAGED):
        refused = mode_refusal(mode, active_connection=False, verified_domain=True)
        assert refused is not None and refused.code == "sso_not_configured"
    assert mode_refusal(SsoMode.BASIC, active_connection=True, verified_domain=False) is None
    refused = mode_refusal(SsoMode.MANAGED, active_connection=True, verified_domain=False)
    assert refused is not None and refused.code == "domain_required"
    assert mode_refusal(SsoMode.MANAGED, active_connection=True, verified_domain=True) is None


def test_the_session_timeout_is_one_hour_to_ninety_days() -> None:
    for fine in (timedelta(hours=1), timedelta(days=7), timedelta(days=90)):
        assert timeout_refusal(fine) is None
    for wrong in (timedelta(minutes=59), timedelta(days=90, seconds=1), timedelta(0)):
        refused = timeout_refusal(wrong)
        assert refused is not None and refused.code == "invalid_setting"


def test_a_connection_becomes_active_after_a_test_sign_in() -> None:
    assert may_activate("verified", tested=True, skip_test=False)
    assert not may_activate("draft", tested=False, skip_test=False)
    assert may_activate("inactive", tested=True, skip_test=False)  # switched off after one
    assert not may_activate("inactive", tested=False, skip_test=False)


def test_only_a_skipped_test_activates_an_untested_connection() -> None:
    assert may_activate("draft", tested=False, skip_test=True)
    assert may_activate("inactive", tested=False, skip_test=True)


def test_the_last_active_connection_stays_while_sso_is_on() -> None:
    for mode in (SsoMode.BASIC, SsoMode.MANAGED):
        assert leaves_no_way_in(mode, active_connections=False)
        assert not leaves_no_way_in(mode, active_connections=True)
    assert not leaves_no_way_in(SsoMode.OFF, active_connections=False)


def test_passwords_are_refused_in_managed_mode_while_enforced() -> None:
    assert Policy(org_id=1, mode=SsoMode.MANAGED).password_refused
    assert not Policy(org_id=1, mode=SsoMode.MANAGED, enforced=False).password_refused
    assert not Policy(org_id=1, mode=SsoMode.BASIC).password_refused
