"""Settings refuse to start in production without a real secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hubgate.config import HostHeader, Settings


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "short-but-not-placeholder"])
def test_production_refuses_missing_or_weak_secret(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBGATE_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="HUBGATE_SECRET_KEY"):
        Settings(env="production", secret_key=secret, _env_file=None)  # type: ignore[call-arg]


def test_dev_runs_without_a_secret_and_production_with_one() -> None:
    assert Settings(env="dev", _env_file=None).secret  # type: ignore[call-arg]
    real = "x" * 40
    assert Settings(env="production", secret_key=real, _env_file=None).secret == real.encode()  # type: ignore[call-arg]


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBGATE_ENV", "dev")
    monkeypatch.setenv("HUBGATE_MAX_BODY_BYTES", "2048")
    assert Settings(_env_file=None).max_body_bytes == 2048  # type: ignore[call-arg]


def test_request_threads_follow_the_engine_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBGATE_DB_POOL_SIZE", raising=False)
    sqlite = Settings(env="dev", database_url="sqlite:///x.db", _env_file=None)  # type: ignore[call-arg]
    postgres = Settings(env="dev", database_url="postgresql+psycopg://h/db", _env_file=None)  # type: ignore[call-arg]
    assert (sqlite.request_threads, postgres.request_threads) == (1, 4)
    monkeypatch.setenv("HUBGATE_DB_POOL_SIZE", "5")
    assert Settings(env="dev", database_url="sqlite:///x.db", _env_file=None).request_threads == 5  # type: ignore[call-arg]
    monkeypatch.setenv("HUBGATE_DB_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="db_pool_size"):
        Settings(env="dev", _env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://mail.example.com", "smtp://user:pass@host:port"),
        ("mail.example.com:587", "smtp://user:pass@host:port"),
        ("smtp://", "names no host"),
        ("smtp://user:hunter2@:587", "names no host"),
        ("smtp://mail.example.com:0", "port must be within 1-65535"),
        ("smtp://mail.example.com:70000", "port must be within 1-65535"),
        ("smtps://user:hunter2@mail.example.com:ab", "port must be within 1-65535"),
        ("smtp://mail.example.com/inbox", "no path, query or fragment"),
    ],
)
def test_a_bad_smtp_url_is_refused_without_echoing_it(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match="smtp_url") as refused:
        Settings(env="dev", smtp_url=url, _env_file=None)  # type: ignore[call-arg]
    assert reason in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_smtp_urls_name_the_server_tls_and_credentials() -> None:
    def server(url: str) -> object:
        return Settings(env="dev", smtp_url=url, _env_file=None).smtp_server  # type: ignore[call-arg]

    plain = server("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.implicit_tls, plain.username) == (  # type: ignore[attr-defined]
        "mail.example.com", 587, False, None,
    )  # fmt: skip
    tls = server("smtps://me%40example.com:p%40ss%3Aword@[::1]:2465")
    assert (tls.host, tls.port, tls.implicit_tls) == ("::1", 2465, True)  # type: ignore[attr-defined]
    assert (tls.username, tls.password) == ("me@example.com", "p@ss:word")  # type: ignore[attr-defined]
    assert "p@ss" not in repr(tls) and str(tls) == "smtps://[::1]:2465"
    assert server("smtps://mail.example.com").port == 465  # type: ignore[attr-defined]
    assert Settings(env="dev", smtp_url="", _env_file=None).smtp_server is None  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("X-Original-Host", HostHeader.X_ORIGINAL_HOST),
        ("x-forwarded-host", HostHeader.X_FORWARDED_HOST),
        ("", None),
    ],
)
def test_the_host_header_is_one_of_two_names_or_unset(
    value: str, expected: HostHeader | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBGATE_HOST_HEADER", value)
    assert Settings(env="dev", _env_file=None).host_header is expected  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["host", "x-real-host", "authorization"])
def test_other_host_headers_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="host_header"):
        Settings(env="dev", host_header=value, _env_file=None)  # type: ignore[call-arg]
