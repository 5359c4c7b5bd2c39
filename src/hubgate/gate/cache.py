"""The per-process decision cache: forward-auth answers kept while nothing that
could change them has changed.

An answer is stored with the change sequence it was computed under and served
only while the sequence read for the asking request is the same number: any
committed change to memberships, roles, teams, resources, tokens, sessions, SSO
settings or SSO authentications (:mod:`hubgate.db.change_triggers`; a new SSO
authentication only ends ``sso_required`` refusals, which are never kept) moves
it, and the whole cache is dropped at once. An answer that depends on time carries its
own end (a token's expiry, a session's end, an SSO authentication's freshness),
and every answer is kept at most :data:`MAX_AGE`, so a session in use is still
touched (its idle timeout) and a token's last use recorded.

Keys hold a digest of the credential, never the credential. The size is bounded:
when full, the oldest entry goes first.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

__all__ = ["MAX_AGE", "Cached", "DecisionCache"]

MAX_AGE = timedelta(seconds=60)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cached(Generic[T]):
    value: T
    until: datetime


class DecisionCache(Generic[T]):
    """Answers by key, valid for one change sequence value and until their end."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[Hashable, Cached[T]] = {}
        self._seq: int | None = None

    def get(self, key: Hashable, seq: int | None, now: datetime) -> T | None:
        """The answer stored under ``key`` for ``seq``; a new ``seq`` empties the cache."""
        if seq != self._seq:
            self._entries.clear()
            self._seq = seq
            return None
        found = self._entries.get(key)
        if found is None or found.until <= now:
            return None
        return found.value

    def put(self, key: Hashable, value: T, seq: int | None, until: datetime) -> None:
        """Keep ``value`` if it was computed under the current sequence (read before
        the database was); an unknown sequence keeps nothing."""
        if seq is None or seq != self._seq or self.capacity <= 0:
            return
        if key not in self._entries and len(self._entries) >= self.capacity:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = Cached(value, until)

    def __len__(self) -> int:
        return len(self._entries)
