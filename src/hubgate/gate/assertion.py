"""Signed identity for upstreams: a short-lived JWT in ``X-Hubgate-Assertion`` on
each allowed ``/auth/check`` answer (``HUBGATE_UPSTREAM_ASSERTION``), so a model
server can check who calls without trusting the network between them
(:mod:`hubgate.upstream` verifies it).

Claims (RFC 7519 §4.1): ``iss`` hubgate's base URL; ``sub`` the caller as in
``X-Hubgate-User`` (absent for anonymous callers of public resources); ``aud``
and ``res`` the resource, ``org/kind/name``, so an assertion for one deployment
is worthless at another; ``org``, ``act`` (the action), ``cred`` (the credential
kind); ``iat``, ``exp`` (``HUBGATE_UPSTREAM_ASSERTION_SECONDS``, at most 60) and a
unique ``jti``. The header's ``typ`` is ``hubgate-assertion+jwt`` (RFC 8725 §3.11),
so no other JWT passes for one.

This runs once per inference call, so the work is kept off that path: the keys
are opened once per process and read again every :data:`RELOAD_SECONDS` (the
key store publishes a key :data:`~hubgate.signing_keys.PUBLISH_AHEAD` before it
signs, far longer than that), and an assertion is reused for the same caller,
action and resource while more than half its life is left (a bounded LRU);
``bench/assertion.py`` measures both paths.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from joserfc import jwt

from hubgate.db.engine import Database
from hubgate.sealed import Sealer
from hubgate.signing_keys import ALGORITHM, LoadedKey, ensure_signer, load_signers

__all__ = ["HEADER", "RELOAD_SECONDS", "TYPE", "Minter", "Subject"]

HEADER = "X-Hubgate-Assertion"
TYPE = "hubgate-assertion+jwt"
RELOAD_SECONDS = 30.0
_REUSED = 4096


@dataclass(frozen=True, slots=True)
class Subject:
    """What an assertion says: who (``""`` for anonymous), how, and what on which
    resource (``org/kind/name``)."""

    who: str
    credential: str
    org: str
    action: str
    resource: str


class Minter:
    """Mints assertions for one instance; thread-safe (requests run on threads)."""

    def __init__(
        self, database: Database, sealer: Sealer, *, issuer: str, lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._database, self._sealer = database, sealer
        self._issuer, self._lifetime, self._clock = issuer, lifetime, clock
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._keys: list[LoadedKey] = []
        self._loaded_at = float("-inf")
        self._minted: OrderedDict[Subject, tuple[str, float]] = OrderedDict()

    def mint(self, subject: Subject) -> str:
        """A JWT for ``subject``: one minted earlier while more than half its life is
        left, else a new one."""
        now = self._clock()
        with self._lock:
            reused = self._minted.get(subject)
            if reused is not None and reused[1] > now:
                self._minted.move_to_end(subject)
                return reused[0]
        token = self._sign(subject, now)
        with self._lock:
            self._minted[subject] = (token, now + self._lifetime / 2)
            self._minted.move_to_end(subject)
            while len(self._minted) > _REUSED:
                self._minted.popitem(last=False)
        return token

    def _sign(self, subject: Subject, now: float) -> str:
        key = self._signer(now)
        header = {"alg": ALGORITHM, "kid": key.kid, "typ": TYPE}
        return jwt.encode(header, self._claims(subject, int(now)), key.private, [ALGORITHM])

    def _claims(self, subject: Subject, now: int) -> dict[str, object]:
        claims: dict[str, object] = {
            "iss": self._issuer, "aud": subject.resource, "res": subject.resource,
            "org": subject.org, "act": subject.action, "cred": subject.credential,
            "iat": now, "exp": now + self._lifetime, "jti": secrets.token_urlsafe(12),
        }  # fmt: skip
        if subject.who:
            claims["sub"] = subject.who
        return claims

    def _signer(self, now: float) -> LoadedKey:
        """The key that signs at ``now``, reading the store again when the copy is
        older than :data:`RELOAD_SECONDS` or holds no signer for ``now``; one thread
        reads it while the others wait for its copy."""
        moment = _utc(now)
        key = self._current(moment, fresh_after=now - RELOAD_SECONDS)
        if key is None:
            with self._reloading:
                key = self._current(moment, fresh_after=now - RELOAD_SECONDS)
                if key is None:
                    self._reload(now)
                    key = self._current(moment, fresh_after=float("-inf"))
        if key is None:
            raise RuntimeError("no signing key after creating one")  # the store broke its word
        return key

    def _current(self, moment: datetime, *, fresh_after: float) -> LoadedKey | None:
        with self._lock:
            if self._loaded_at < fresh_after:
                return None
            return _signing(self._keys, moment)

    def _reload(self, now: float) -> None:
        """Read the keys, making the first one when none signs. Called after check()
        has closed its transaction: this one is short and its own."""
        moment = _utc(now)
        keys = self._load(moment)
        if _signing(keys, moment) is None:
            ensure_signer(self._database, self._sealer, moment)
            keys = self._load(moment)
        with self._lock:
            self._keys, self._loaded_at = keys, now

    def _load(self, moment: datetime) -> list[LoadedKey]:
        with self._database.transaction() as db:
            return load_signers(db, self._sealer, moment)


def _signing(keys: list[LoadedKey], moment: datetime) -> LoadedKey | None:
    """The newest key that signs at ``moment``."""
    return next((k for k in reversed(keys) if k.signs_at(moment)), None)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
