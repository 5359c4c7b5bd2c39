"""Secrets at rest: sealed under HUBGATE_SECRET_KEY, openable after a rotation."""

from __future__ import annotations

import pytest

from hubgate.config import Settings
from hubgate.sealed import Sealer, UnsealFailed

OLD, NEW = "o" * 40, "n" * 40


def _sealer(secret: str, previous: list[str] | None = None) -> Sealer:
    settings = Settings(
        env="production", secret_key=secret, previous_secret_keys=previous or [], _env_file=None
    )  # type: ignore[call-arg]
    return Sealer(settings)


def test_sealed_values_open_and_hide_the_plaintext() -> None:
    sealer = _sealer(NEW)
    sealed = sealer.seal("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE" not in sealed and sealer.unseal(sealed) == "-----BEGIN PRIVATE KEY-----"
    assert sealer.seal("x") != sealer.seal("x"), "each seal is randomized"


def test_rotation_keeps_old_values_readable_and_a_wrong_key_fails_clearly() -> None:
    sealed = _sealer(OLD).seal("secret")
    assert _sealer(NEW, [OLD]).unseal(sealed) == "secret"
    with pytest.raises(UnsealFailed) as caught:
        _sealer(NEW).unseal(sealed)
    assert caught.value.code == "secret_unreadable"
    with pytest.raises(UnsealFailed):
        _sealer(NEW).unseal(sealed[:-4] + "AAAA")


def test_opened_values_are_kept_but_a_failure_is_not() -> None:
    sealer = _sealer(NEW)
    sealed = sealer.seal("key")
    assert sealer.unseal(sealed) == sealer.unseal(sealed) == "key"
    tampered = sealed[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(UnsealFailed):
            sealer.unseal(tampered)
