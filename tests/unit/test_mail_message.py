"""Composing an outbox row as a MIME message (plain text + HTML alternative)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hubgate.mail.message import Outgoing, compose, text_to_html
from hubgate.mail.outbox import MAX_ATTEMPTS, retry_delay

CREATED = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def _mail(**changes: object) -> Outgoing:
    values: dict[str, object] = {
        "id": 7, "recipient": "ada@example.com", "subject": "Hello", "body": "Hi",
        "html": None, "attempts": 0, "created_at": CREATED,
    }  # fmt: skip
    values.update(changes)
    return Outgoing(**values)  # type: ignore[arg-type]


def test_text_becomes_escaped_paragraphs_with_clickable_links() -> None:
    html = text_to_html(
        "Hello <Ada> & co,\n\nOpen https://hub.test/v/a?b=1&c=2.\nThen sign in.\n\n\n(see http://x.test/p)"
    )
    assert "<p>Hello &lt;Ada&gt; &amp; co,</p>" in html
    assert (
        '<p>Open <a href="https://hub.test/v/a?b=1&amp;c=2">https://hub.test/v/a?b=1&amp;c=2</a>.'
        "<br>\nThen sign in.</p>"
    ) in html
    assert '<p>(see <a href="http://x.test/p">http://x.test/p</a>)</p>' in html


def test_a_link_cannot_break_out_of_its_attribute() -> None:
    html = text_to_html('https://evil.test/"onmouseover="alert(1)')
    assert 'onmouseover="' not in html and '<a href="https://evil.test/">' in html


def test_compose_sets_the_headers_and_both_parts() -> None:
    now = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
    message = compose(_mail(), "hubgate <noreply@hub.test>", now)
    assert message["From"] == "hubgate <noreply@hub.test>"
    assert (message["To"], message["Subject"]) == ("ada@example.com", "Hello")
    assert message["Date"] == "Fri, 02 Jan 2026 04:00:00 +0000"
    assert message["Message-ID"] == "<outbox.7.20260102030405600000@hub.test>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain", "text/html",
    ]  # fmt: skip


def test_a_line_break_in_a_header_is_refused() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        compose(_mail(subject="Hi\nBcc: eve@example.com"), "noreply@hub.test", CREATED)


def test_retries_wait_30_seconds_doubling_up_to_an_hour() -> None:
    waits = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits[:3] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert max(waits) == timedelta(hours=1) == retry_delay(1000)
    assert waits == sorted(waits)
