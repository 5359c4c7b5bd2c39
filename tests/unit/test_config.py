"""Settings refuse to start in production without a real secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hubgate.config import Settings


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
    assert (sqlite.request_threads, postgres.request_threads) == (2, 4)
    monkeypatch.setenv("HUBGATE_DB_POOL_SIZE", "5")
    assert Settings(env="dev", database_url="sqlite:///x.db", _env_file=None).request_threads == 5  # type: ignore[call-arg]
    monkeypatch.setenv("HUBGATE_DB_POOL_SIZE", "0")
    with pytest.raises(ValidationError, match="db_pool_size"):
        Settings(env="dev", _env_file=None)  # type: ignore[call-arg]
