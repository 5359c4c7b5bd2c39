"""Prometheus metrics, on a registry of hubgate's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "DECISIONS",
    "GATE_TOKEN_CALLS",
    "MAIL_FAILURES",
    "MAIL_OUTBOX",
    "MAIL_SENT",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SIGN_INS",
    "USAGE_FLUSHES",
    "USAGE_PENDING_KEYS",
    "render",
]

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "hubgate_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "hubgate_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
SIGN_INS = Counter(
    "hubgate_sign_ins_total", "Sign-ins by method and outcome.", ["method", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
DECISIONS = Counter(
    "hubgate_access_decisions_total", "Access decisions by where and result or reason.",
    ["where", "result"], registry=REGISTRY,
)  # fmt: skip

MAIL_SENT = Counter(
    "hubgate_mail_sent_total", "Mail the SMTP server accepted.", registry=REGISTRY,
)  # fmt: skip
MAIL_FAILURES = Counter(
    "hubgate_mail_failed_attempts_total",
    "Failed delivery attempts, by outcome: retry (later) or final (the row is failed).",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
MAIL_OUTBOX = Gauge(
    "hubgate_mail_outbox_rows", "Outbox rows by status (pending, failed), as of the last pass.",
    ["status"], registry=REGISTRY,
)  # fmt: skip

# Token usage (hubgate.gate.usage). No label names a token, deployment or org:
# their number grows without bound, and so would the series Prometheus keeps;
# per-token figures are in token_usage, on the token pages and the API. The
# labels below take a handful of fixed values. Counted when a flush takes the
# calls, so these lag the calls by up to HUBGATE_USAGE_FLUSH_SECONDS.
GATE_TOKEN_CALLS = Counter(
    "hubgate_gate_token_calls_total",
    "Forward-auth calls by a token to a deployment, by outcome: written (to token_usage), "
    "orphaned (token or deployment deleted before the flush) or dropped (too many keys pending).",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
USAGE_FLUSHES = Counter(
    "hubgate_token_usage_flushes_total", "Token usage flushes by outcome: ok or failed.",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
USAGE_PENDING_KEYS = Gauge(
    "hubgate_token_usage_pending_keys",
    "(token, deployment, day) keys a failed flush kept for the next one (0 after a success).",
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
