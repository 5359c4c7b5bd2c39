"""An audit event as the receivers see it: a JSON body signed with HMAC-SHA256
for webhooks, and an RFC 5424 message framed by octet counting (RFC 6587 §3.4.1)
for syslog. Pure functions over :class:`StreamEvent`; no I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "SD_ID",
    "StreamEvent",
    "event_body",
    "frame",
    "signature_header",
    "syslog_message",
    "verify_signature",
]

SD_ID = "hubgate@32473"
"""The structured data element's id: a name at an enterprise number (RFC 5424
§6.3.2); 32473 is the number reserved for examples and documentation (RFC 5612)."""
FACILITY_AUDIT = 13  # "log audit", RFC 5424 §6.2.1 table 1
SEVERITY_NOTICE = 5
SEVERITY_WARNING = 4  # a refusal: the event carries a reason
SIGNATURE_HEADER = "X-Hubgate-Signature"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """The fields of an audit event that leave hubgate."""

    id: int
    at: datetime
    org_id: int | None
    org: str | None
    action: str
    actor: str
    target: str
    reason: str | None
    trace_id: str


def event_body(event: StreamEvent) -> bytes:
    """The webhook's JSON body; ``id`` is the receiver's key for de-duplication."""
    document = {
        "id": event.id,
        "at": _timestamp(event.at),
        "org_id": event.org_id,
        "org": event.org,
        "action": event.action,
        "actor": event.actor,
        "target": event.target,
        "reason": event.reason,
        "trace_id": event.trace_id,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``: the timestamp is
    signed with the body, so a receiver can refuse an old message replayed."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does with :data:`SIGNATURE_HEADER` (the tests, and the README)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, given = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(_mac(secret, int(timestamp), body), given)


def syslog_message(event: StreamEvent, hostname: str) -> bytes:
    """The event as an RFC 5424 SYSLOG-MSG (§6): header, one SD-ELEMENT with the
    event's fields, and a line for people as the MSG."""
    severity = SEVERITY_WARNING if event.reason else SEVERITY_NOTICE
    header = " ".join(
        (
            f"<{FACILITY_AUDIT * 8 + severity}>1",
            _timestamp(event.at),
            _header_field(hostname, 255),
            "hubgate",
            "-",
            _header_field(event.action, 32),
        )
    )
    return f"{header} {_structured_data(event)} {_summary(event)}".encode()


def frame(message: bytes) -> bytes:
    """Octet-counting framing (RFC 6587 §3.4.1): ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


def _structured_data(event: StreamEvent) -> str:
    values = {
        "id": str(event.id),
        "org": event.org,
        "org_id": None if event.org_id is None else str(event.org_id),
        "action": event.action,
        "actor": event.actor,
        "target": event.target or None,
        "reason": event.reason,
        "trace_id": event.trace_id,
    }
    params = "".join(f' {name}="{_param_value(v)}"' for name, v in values.items() if v is not None)
    return f"[{SD_ID}{params}]"


def _param_value(value: str) -> str:
    """PARAM-VALUE escaping (§6.3.3): ``"``, ``\\`` and ``]`` take a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    """A header field is PRINTUSASCII (33-126) and bounded (§6.2); else NILVALUE."""
    kept = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return kept or "-"


def _summary(event: StreamEvent) -> str:
    refused = f" refused: {event.reason}" if event.reason else ""
    line = f"{event.actor} {event.action} {event.target}".rstrip() + refused
    return "".join(c if c.isprintable() else " " for c in line)


def _timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (RFC 5424 §6.2.3), microseconds at most."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
