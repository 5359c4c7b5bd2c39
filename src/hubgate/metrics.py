"""Prometheus metrics, on a registry of hubgate's own.

Under ``hubgate serve --workers N`` each worker is a process of its own, so each
counts only what it served. ``serve`` then names a directory in
``PROMETHEUS_MULTIPROC_DIR`` before the workers start; prometheus_client (which
reads the variable when it is first imported) keeps every value in a file there,
and :func:`render` adds the files of every worker up, whichever worker the scrape
reaches. Without the variable (one process: tests, ``hubgate demo``) the values
stay in memory and :func:`render` reads :data:`REGISTRY`.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from hubgate.errors import HubgateError

__all__ = [
    "DECISIONS",
    "GATE_TOKEN_CALLS",
    "MAIL_FAILURES",
    "MAIL_OUTBOX",
    "MAIL_SENT",
    "MULTIPROC_DIR",
    "REGISTRY",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SIGN_INS",
    "USAGE_FLUSHES",
    "USAGE_PENDING_KEYS",
    "SIGN_IN_REFUSALS",
    "bounded_reason",
    "count_refusal",
    "forget_this_process",
    "render",
]

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

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
# Labels a closed set bounds: reason codes (bounded_reason) and the id of an SSO
# connection ("" for a password or platform sign-in), as many as the connections.
SIGN_IN_REFUSALS = Counter(
    "hubgate_sign_in_refusals_total",
    "Refused sign-ins by method, SSO connection id and reason code (unknown codes: other).",
    ["method", "connection", "reason"], registry=REGISTRY,
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
# Every worker's mail pass counts the same table: the latest reading is the answer
# (a sum would count the outbox once per worker).
MAIL_OUTBOX = Gauge(
    "hubgate_mail_outbox_rows", "Outbox rows by status (pending, failed), as of the last pass.",
    ["status"], registry=REGISTRY, multiprocess_mode="mostrecent",
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
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip


# Codes given where a refusal is raised rather than by its class.
_RAISED_CODES = frozenset({
    "invalid_credentials", "sso_busy", "sso_enforced", "sso_not_configured",
    "sso_connection_not_active", "connection_not_offered", "member_deactivated",
    "account_unknown", "unknown_email", "too_many", "session_required",
})  # fmt: skip


def _codes(root: type[HubgateError]) -> set[str]:
    found = {root.default_code}
    for sub in root.__subclasses__():
        found |= _codes(sub)
    return found


def bounded_reason(code: str) -> str:
    """``code`` if hubgate can raise it (an error class's code, or one of
    :data:`_RAISED_CODES`), else ``other``: a label value must come from a closed
    set, or Prometheus keeps a series per stray value."""
    return code if code in _RAISED_CODES or code in _codes(HubgateError) else "other"


def count_refusal(method: str, code: str, connection_id: int | None = None) -> None:
    """A refused sign-in, in both counters, by its bounded reason."""
    reason = bounded_reason(code)
    SIGN_INS.labels(method, reason).inc()
    connection = "" if connection_id is None else str(connection_id)
    SIGN_IN_REFUSALS.labels(method, connection, reason).inc()


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's files added up."""
    directory = os.environ.get(MULTIPROC_DIR)
    if not directory:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def forget_this_process() -> None:
    """At a worker's shutdown: drop its files of live gauges (``livesum`` ones), so
    they stop counting; its counters stay, since what it counted did happen.

    A worker killed hard (SIGKILL, OOM) never gets here: its live gauge files stay
    until the next ``hubgate serve`` clears the directory; counters are unaffected."""
    directory = os.environ.get(MULTIPROC_DIR)
    if directory:
        mark_process_dead(os.getpid(), path=directory)  # type: ignore[no-untyped-call]
