"""The provider's signing keys (RFC 7517), cached per process.

A key set is refetched when it is older than ``max_age``; an unknown ``kid``
triggers at most one refetch per ``cooldown``, so a flood of random kids costs
one fetch. Keys that fail to parse are skipped. (Public data: a per-process
cache is fine; the protocol's own state lives in the shared store.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from hubgate import bounded_json
from hubgate.sso.oidc.errors import KeyNotFound

__all__ = ["JwksCache", "parse_jwks"]

_MAX_KEYS = 32
_TYPES: dict[str, Any] = {"RSA": RSAKey, "EC": ECKey}


def parse_jwks(document: bytes) -> KeySet:
    """The usable public signing keys of a JWKS document."""
    try:
        data: Any = bounded_json.loads(document)
    except bounded_json.JsonRefused as exc:
        raise KeyNotFound(f"The provider's key set is refused: {exc.message}") from exc
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise KeyNotFound("The provider's key set has no keys.")
    return KeySet([k for k in map(_key, entries[:_MAX_KEYS]) if k is not None])


def _key(entry: Any) -> Any:
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    kind = _TYPES.get(str(entry.get("kty")))
    public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    try:
        return kind.import_key(public) if kind else None
    except (JoseError, ValueError, TypeError):
        return None


@dataclass
class _Entry:
    keys: KeySet
    fetched_at: datetime
    missed_at: datetime | None = None
    """When an unknown kid last caused a refetch (the cooldown counts from here)."""


class JwksCache:
    def __init__(
        self,
        fetch: Callable[[str], bytes],
        *,
        max_age: timedelta = timedelta(hours=1),
        cooldown: timedelta = timedelta(seconds=60),
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._cooldown = cooldown
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def keys_for(self, jwks_uri: str, kid: str | None, now: datetime) -> KeySet:
        """The key set, refetched if stale, or (once per cooldown) if ``kid`` is unknown."""
        keys = self.cached(jwks_uri, kid, now)
        if keys is None:
            keys = self.refreshed(jwks_uri, self._fetch(jwks_uri), now)
        return keys

    def cached(self, jwks_uri: str, kid: str | None, now: datetime) -> KeySet | None:
        """The key set as kept, or ``None`` when it must be fetched first (then given
        to :meth:`refreshed`): stale, or (once per cooldown) without ``kid``. The
        fetch is the caller's, made without this cache's lock held."""
        with self._lock:
            entry = self._entries.get(jwks_uri)
            if entry is None or now - entry.fetched_at >= self._max_age:
                return None
            if kid is not None and not _has(entry.keys, kid) and self._may_retry(entry, now):
                return None
            return entry.keys

    def refreshed(self, jwks_uri: str, document: bytes, now: datetime) -> KeySet:
        """The key set in ``document``, fetched because :meth:`cached` said so, kept;
        a refetch of a fresh set (for an unknown kid) starts its cooldown."""
        keys = parse_jwks(document)
        with self._lock:
            entry = self._entries.get(jwks_uri)
            missed = entry is not None and now - entry.fetched_at < self._max_age
            self._entries[jwks_uri] = _Entry(keys, now, now if missed else None)
        return keys

    def _may_retry(self, entry: _Entry, now: datetime) -> bool:
        return entry.missed_at is None or now - entry.missed_at >= self._cooldown


def _has(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
