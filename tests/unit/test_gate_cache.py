"""The decision cache: an answer is served only under the change sequence it was
computed under and before its own end; the size stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hubgate.gate.cache import DecisionCache

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


def filled(capacity: int = 10, seq: int = 1) -> DecisionCache[str]:
    cache: DecisionCache[str] = DecisionCache(capacity)
    assert cache.get("k", seq, NOW) is None  # learns the sequence
    cache.put("k", "allow", seq, LATER)
    return cache


def test_an_answer_is_served_under_its_sequence_until_its_end() -> None:
    cache = filled()
    assert cache.get("k", 1, NOW) == "allow"
    assert cache.get("k", 1, LATER) is None
    assert cache.get("other", 1, NOW) is None


def test_a_new_sequence_drops_everything() -> None:
    cache = filled()
    assert cache.get("k", 2, NOW) is None
    assert len(cache) == 0
    assert cache.get("k", 1, NOW) is None  # going back is a change too


def test_an_answer_computed_under_an_older_sequence_is_not_kept() -> None:
    """A check read sequence 1, computed from the database while a change moved it
    to 2 and another check emptied the cache: its answer may predate the change."""
    cache = filled()
    assert cache.get("x", 2, NOW) is None
    cache.put("late", "allow", 1, LATER)
    assert cache.get("late", 2, NOW) is None


def test_an_unknown_sequence_keeps_nothing() -> None:
    cache: DecisionCache[str] = DecisionCache(10)
    assert cache.get("k", None, NOW) is None
    cache.put("k", "allow", None, LATER)
    assert cache.get("k", None, NOW) is None


def test_the_oldest_entry_goes_when_full() -> None:
    cache = filled(capacity=2)
    cache.put("b", "b", 1, LATER)
    cache.put("c", "c", 1, LATER)
    assert len(cache) == 2
    assert cache.get("k", 1, NOW) is None
    assert (cache.get("b", 1, NOW), cache.get("c", 1, NOW)) == ("b", "c")


def test_capacity_zero_caches_nothing() -> None:
    cache = filled(capacity=0)
    assert cache.get("k", 1, NOW) is None
