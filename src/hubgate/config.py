"""Settings, read from ``HUBGATE_*`` environment variables and a ``.env`` file.

One typed object, built by :func:`load_settings` when the app or the CLI starts,
never at import time. Outside development it refuses to start with a missing or
placeholder secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Environment", "HostHeader", "Settings", "SmtpServer", "load_settings"]

_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})
_MIN_SECRET_LENGTH = 32
DEV_SECRET = "hubgate-development-secret-not-for-production-use"


class Environment(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


class HostHeader(StrEnum):
    """Where the proxy puts the host it routed by: nginx's ``X-Original-Host``
    (deploy/nginx/vllm.conf) or Traefik's and Caddy's ``X-Forwarded-Host``."""

    X_ORIGINAL_HOST = "x-original-host"
    X_FORWARDED_HOST = "x-forwarded-host"


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes, from ``HUBGATE_SMTP_URL``; the password never shows in a repr."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{host}:{self.port}"


class Settings(BaseSettings):
    """Every knob of a hubgate instance. See the README's configuration table."""

    # No input in validation errors: a URL may carry a password (HUBGATE_SMTP_URL).
    model_config = SettingsConfigDict(
        env_prefix="HUBGATE_", env_file=".env", extra="ignore", frozen=True,
        hide_input_in_errors=True,
    )  # fmt: skip

    env: Environment = Environment.PRODUCTION
    secret_key: str = ""
    previous_secret_keys: list[str] = []
    database_url: str = "sqlite:///hubgate.db"
    base_url: str = "http://127.0.0.1:8000"
    allow_private_idp_urls: bool = False
    dns_resolver: str | None = None

    db_pool_size: Annotated[int | None, Field(ge=1, le=200)] = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1024 * 1024
    gate_cache_entries: Annotated[int, Field(ge=0, le=10_000_000)] = 100_000
    session_idle_seconds: Annotated[int, Field(ge=60)] = 2 * 3600
    session_absolute_seconds: Annotated[int, Field(ge=60)] = 14 * 24 * 3600
    email_token_seconds: Annotated[int, Field(ge=60)] = 24 * 3600

    throttle_window_seconds: Annotated[int, Field(ge=1)] = 15 * 60
    throttle_account_failures: Annotated[int, Field(ge=1)] = 10
    throttle_address_failures: Annotated[int, Field(ge=1)] = 50

    password_memory_kib: Annotated[int, Field(ge=1024)] = 65536
    password_time_cost: Annotated[int, Field(ge=1)] = 3

    trusted_proxies: Annotated[int, Field(ge=0)] = 0
    host_header: HostHeader | None = None
    """The header forward-auth reads the routed host from (deployments bound to a
    host); unset: host bindings are ignored, since a client may send either."""
    json_logs: bool = False
    smtp_url: str | None = None
    mail_from: str = "hubgate <noreply@localhost>"
    unverified_account_days: Annotated[int, Field(ge=1, le=365)] = 7
    password_reset_seconds: Annotated[int, Field(ge=300, le=86400)] = 3600
    metadata_refresh_hours: Annotated[int, Field(ge=1, le=720)] = 24
    metadata_refresh_failing_days: Annotated[int, Field(ge=1, le=90)] = 3
    usage_flush_seconds: Annotated[float, Field(ge=1, le=3600)] = 10.0
    usage_max_keys: Annotated[int, Field(ge=1000, le=10_000_000)] = 100_000
    metrics_dir: Path | None = None
    """Where ``hubgate serve --workers N`` (N > 1) keeps each worker's metric files;
    cleared at every start. Unset: a private temporary directory for the run."""

    # Audit streaming (hubgate.streams): the operator's destinations for every event.
    audit_webhook_url: str | None = None
    audit_webhook_secret: str | None = None
    audit_syslog_url: str | None = None
    audit_syslog_ca_file: str | None = None
    audit_stream_max_queued: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000

    # Signed identity for upstreams (hubgate.gate.assertion): off unless asked for.
    upstream_assertion: bool = False
    upstream_assertion_seconds: Annotated[int, Field(ge=5, le=60)] = 60
    signing_key_rotation_days: Annotated[int, Field(ge=1, le=365)] = 30

    @field_validator("host_header", mode="before")
    @classmethod
    def _header_name(cls, value: object) -> object:
        """Header names are case-insensitive; an empty value means unset."""
        return (value.lower() or None) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _secret_is_real(self) -> Self:
        if self.env is Environment.DEV:
            return self
        secret = self.secret_key.strip()
        if secret.lower() in _PLACEHOLDER_SECRETS or secret == DEV_SECRET:
            raise ValueError(
                "Config 'HUBGATE_SECRET_KEY' is missing or a placeholder; set a random value "
                "of at least 32 characters, or HUBGATE_ENV=dev for local development."
            )
        if len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError("Config 'HUBGATE_SECRET_KEY' must be at least 32 characters long.")
        return self

    @model_validator(mode="after")
    def _audit_webhook_is_signed(self) -> Self:
        if self.audit_webhook_url and len(self.audit_webhook_secret or "") < _MIN_SECRET_LENGTH:
            raise ValueError(
                "Config 'HUBGATE_AUDIT_WEBHOOK_SECRET' must be at least 32 characters when "
                "HUBGATE_AUDIT_WEBHOOK_URL is set: receivers verify each event's signature."
            )
        return self

    @field_validator("dns_resolver")
    @classmethod
    def _resolver_is_an_address(cls, value: str | None) -> str | None:
        if value:
            _resolver_address(value)
        return value or None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_is_a_server(cls, value: str | None) -> str | None:
        if value:
            _smtp_server(value)
        return value or None

    @property
    def smtp_server(self) -> SmtpServer | None:
        """The SMTP server to deliver through, or ``None``: mail stays in the outbox."""
        return _smtp_server(self.smtp_url) if self.smtp_url else None

    @property
    def dns_resolver_address(self) -> tuple[str, int] | None:
        """The DNS server to ask as (IP, port), or ``None`` for the system resolver."""
        return _resolver_address(self.dns_resolver) if self.dns_resolver else None

    @property
    def secret(self) -> bytes:
        """The signing secret; development falls back to a fixed, public value."""
        return (self.secret_key or DEV_SECRET).encode()

    @property
    def request_threads(self) -> int:
        """Database connections per process, and as many request threads of
        hubgate's own and of anyio's for FastAPI's ``def`` routes (the pool
        overflows to twice this).

        Request work is mostly CPU under one GIL, so more threads than this only
        trade the GIL back and forth; waits on identity providers run on network
        threads of their own (:mod:`hubgate.web.threads`), not on these. SQLite
        takes one writer at a time across every worker: a thread holding its write
        lock must win its own process's GIL back after each statement, and every
        other busy thread of that process delays it (by up to the 5 ms switch
        interval each time), so it gets one. Two cost complete OIDC sign-ins a
        tenth more CPU (bench/oidc.py), eight made repeat sign-ins a fifth slower
        (bench/login.py). PostgreSQL gets four, whose threads overlap their round
        trips to the server; eight were a tenth slower.
        """
        if self.db_pool_size is not None:
            return self.db_pool_size
        return 1 if self.database_url.startswith("sqlite") else 4

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def _resolver_address(value: str) -> tuple[str, int]:
    """``host`` or ``host:port`` (``[v6]:port``) -> (IP, port); the host is an IP address."""
    host, port = value.strip(), "53"
    if host.startswith("[") and "]:" in host:
        host, port = host[1:].split("]:", 1)
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        address = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        raise ValueError(
            "give the DNS server as an IP address, optionally with ':port' "
            "('[v6]:port' for IPv6), e.g. 127.0.0.1:5353"
        ) from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("the DNS server's port must be within 1-65535")
    return address, int(port)


_SMTP_PORTS = {"smtp": 587, "smtps": 465}  # submission (RFC 6409), and over TLS (RFC 8314)


def _smtp_server(value: str) -> SmtpServer:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when offered) or ``smtps://`` (TLS)."""
    url = urlsplit(value.strip())
    if url.scheme not in _SMTP_PORTS:
        raise ValueError(
            "give the SMTP server as smtp://user:pass@host:port (STARTTLS when offered) "
            "or smtps://user:pass@host:port (implicit TLS)"
        )
    if not url.hostname:
        raise ValueError("the SMTP URL names no host, e.g. smtp://mail.example.com:587")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ValueError("the SMTP URL takes no path, query or fragment")
    try:
        port = _SMTP_PORTS[url.scheme] if url.port is None else url.port
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError("the SMTP server's port must be within 1-65535")
    return SmtpServer(
        host=url.hostname, port=port, implicit_tls=url.scheme == "smtps",
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password is not None else None,
    )  # fmt: skip


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and ``.env``); keyword overrides win."""
    return Settings(**overrides)  # type: ignore[arg-type]
