"""The event as receivers see it: RFC 5424 messages (§6) framed by octet counting
(RFC 6587 §3.4.1), and the webhook body with its HMAC-SHA256 signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from hubgate.errors import BadRequest
from hubgate.streams.formats import (
    StreamEvent,
    event_body,
    frame,
    signature_header,
    syslog_message,
    verify_signature,
)
from hubgate.streams.targets import check_url, syslog_server

AT = datetime(2026, 12, 6, 12, 0, 1, 250000, tzinfo=UTC)
EVENT = StreamEvent(
    id=42, at=AT, org_id=7, org="acme", action="sso.signin", actor="ada@acme.test",
    target="acme", reason=None, trace_id="0123456789abcdef",
)  # fmt: skip
SECRET = "s" * 40


def test_rfc5424_header_and_structured_data() -> None:
    """PRI 109 = facility 13 (log audit) x 8 + severity 5 (notice), version 1,
    RFC 3339 time in UTC, APP-NAME, NILVALUE PROCID, the action as MSGID."""
    message = syslog_message(EVENT, "gate-1").decode()
    assert message == (
        "<109>1 2026-12-06T12:00:01.250000Z gate-1 hubgate - sso.signin "
        '[hubgate@32473 id="42" org="acme" org_id="7" action="sso.signin" '
        'actor="ada@acme.test" target="acme" trace_id="0123456789abcdef"] '
        "ada@acme.test sso.signin acme"
    )


def test_a_refusal_is_a_warning_with_its_reason() -> None:
    refused = StreamEvent(**{**_fields(EVENT), "reason": "domain_mismatch", "org": None})
    message = syslog_message(refused, "gate-1").decode()
    assert message.startswith("<108>1 ")
    assert 'reason="domain_mismatch"' in message and "org=" not in message
    assert message.endswith("refused: domain_mismatch")


def test_param_values_are_escaped_and_header_fields_bounded() -> None:
    """§6.3.3: ``"``, ``\\`` and ``]`` take a backslash inside a PARAM-VALUE; header
    fields are printable US-ASCII, bounded, NILVALUE when nothing is left."""
    hostile = StreamEvent(
        **{**_fields(EVENT), "actor": 'a"b\\c]d', "target": "x\ny", "action": "é" * 40}
    )
    message = syslog_message(hostile, " ").decode()
    assert 'actor="a\\"b\\\\c\\]d"' in message
    assert message.split(" ")[2:6] == ["-", "hubgate", "-", "-"]
    assert "\n" not in message.rsplit("] ", 1)[1]


def test_octet_counting_counts_bytes_not_characters() -> None:
    message = "<109>1 - - - - - - é".encode()
    assert frame(message) == b"21 " + message


def test_body_holds_the_event_fields() -> None:
    assert json.loads(event_body(EVENT)) == {
        "id": 42, "at": "2026-12-06T12:00:01.250000Z", "org_id": 7, "org": "acme",
        "action": "sso.signin", "actor": "ada@acme.test", "target": "acme", "reason": None,
        "trace_id": "0123456789abcdef",
    }  # fmt: skip


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = event_body(EVENT)
    header = signature_header(SECRET, 1765000000, body)
    expected = hmac.new(SECRET.encode(), b"1765000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1765000000,v1={expected}"
    assert verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature(SECRET, header.replace("t=1765000000", "t=1765000001"), body)
    assert not verify_signature("other" * 8, header, body)
    assert not verify_signature(SECRET, "v1=" + expected, body)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://hooks.example.com/in", "url_insecure"),
        ("http://10.0.0.1/in", "url_insecure"),
        ("ftp://hooks.example.com/in", "url_invalid"),
        ("https://user:pw@hooks.example.com/in", "url_invalid"),
        ("https://hooks.example.com/in\n", "url_invalid"),
        ("https://hooks.example.com:99999/", "url_invalid"),
        ("https://" + "a" * 500 + ".com/", "url_invalid"),
        ("https:///nohost", "url_invalid"),
    ],
)
def test_webhook_urls_refused(url: str, code: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_url("webhook", url, allow_private=False)
    assert refused.value.code == code


def test_http_only_to_loopback_and_only_when_allowed() -> None:
    assert check_url("webhook", "https://hooks.example.com/in", allow_private=False)
    assert check_url("webhook", "http://127.0.0.1:8080/in", allow_private=True)
    with pytest.raises(BadRequest):
        check_url("webhook", "http://127.0.0.1:8080/in", allow_private=False)
    with pytest.raises(BadRequest):
        check_url("webhook", "http://192.168.1.1/in", allow_private=True)


@pytest.mark.parametrize(
    "url", ["udp://logs:514", "tcp://logs", "tcp://logs:514/x", "tls://:6514", "tcp://u@logs:1"]
)
def test_syslog_urls_refused(url: str) -> None:
    with pytest.raises(BadRequest):
        check_url("syslog", url, allow_private=False)


def test_syslog_url_read() -> None:
    server = syslog_server("tls://logs.example.com:6514")
    assert (server.host, server.port, server.tls) == ("logs.example.com", 6514, True)


def _fields(event: StreamEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in StreamEvent.__slots__}
