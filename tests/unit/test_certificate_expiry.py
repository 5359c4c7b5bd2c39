"""The expiry arithmetic admins read and alarms follow: days left, the words
shown, the threshold reached, and which certificate counts (the last to expire)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubgate.sso.certificate_expiry import Certificate, last_certificate, threshold_of

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def expiring(delta: timedelta) -> Certificate:
    return Certificate("ab" * 32, NOW + delta)


@pytest.mark.parametrize(
    ("delta", "words", "threshold"),
    [
        (timedelta(days=400), "in 400 days", None),
        (timedelta(days=30, hours=1), "in 30 days", None),
        (timedelta(days=29, hours=23), "in 29 days", "30_days"),
        (timedelta(days=7), "in 7 days", "30_days"),
        (timedelta(days=6, hours=23), "in 6 days", "7_days"),
        (timedelta(days=1), "in 1 day", "7_days"),
        (timedelta(hours=3), "expires today", "7_days"),
        (timedelta(0), "expired today", "expired"),
        (timedelta(hours=-3), "expired today", "expired"),
        (timedelta(days=-1, hours=-1), "expired 1 day ago", "expired"),
        (timedelta(days=-10), "expired 10 days ago", "expired"),
    ],
)
def test_words_and_thresholds(delta: timedelta, words: str, threshold: str | None) -> None:
    certificate = expiring(delta)
    assert certificate.relative(NOW) == words
    assert threshold_of(certificate, NOW) == threshold


def test_the_certificate_that_lasts_longest_counts() -> None:
    old, new = expiring(timedelta(days=3)), expiring(timedelta(days=300))
    assert last_certificate([new, old]) is new
    assert last_certificate([]) is None
