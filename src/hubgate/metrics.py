"""Prometheus metrics, on a registry of hubgate's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = [
    "DECISIONS",
    "MAIL_FAILURES",
    "MAIL_OUTBOX",
    "MAIL_SENT",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SIGN_INS",
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


def render() -> bytes:
    return generate_latest(REGISTRY)
