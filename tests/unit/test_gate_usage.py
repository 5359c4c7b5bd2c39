"""The per-process usage counter of :mod:`hubgate.gate.usage`, without a database:
exact counts under concurrent callers, UTC day keys, the bound on pending keys."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from hubgate.gate.usage import Batch, UsageCounter

NOON = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_concurrent_counts_are_all_kept() -> None:
    counter = UsageCounter()
    start = threading.Barrier(8)

    def caller(token_id: int) -> None:
        start.wait()
        for i in range(5_000):
            counter.count(token_id % 2 + 1, 10 + i % 3, NOON + timedelta(microseconds=i))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batch = counter.take()
    assert sum(batch.calls.values()) == 8 * 5_000
    assert batch.calls[(1, 10, NOON.date())] == 4 * 1_667
    assert batch.calls[(2, 12, NOON.date())] == 4 * 1_666
    assert batch.last_used == {1: NOON + timedelta(microseconds=4_999)} | {
        2: NOON + timedelta(microseconds=4_999)
    }
    assert batch.dropped == 0
    assert not counter.take(), "a take empties the counter"


def test_calls_either_side_of_midnight_utc_count_on_their_own_day() -> None:
    counter = UsageCounter()
    before = datetime(2026, 12, 6, 23, 59, 59, 999_999, tzinfo=UTC)
    after = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    counter.count(1, 5, after)
    counter.count(1, 5, before)  # answered later by a slower thread
    counter.count(1, 5, before)
    batch = counter.take()
    assert batch.calls == {(1, 5, date(2026, 12, 6)): 2, (1, 5, date(2026, 12, 7)): 1}
    assert batch.last_used == {1: after}, "the latest use wins, whatever the order"


def test_past_the_key_bound_new_keys_are_dropped_and_known_ones_still_count() -> None:
    counter = UsageCounter(max_keys=2)
    for token_id in (1, 2, 3, 1, 3, 2):
        counter.count(token_id, 7, NOON)
    batch = counter.take()
    assert batch.calls == {(1, 7, NOON.date()): 2, (2, 7, NOON.date()): 2}
    assert batch.dropped == 2
    assert set(batch.last_used) == {1, 2}, "a dropped call leaves no last use either"


def test_absorbing_keeps_the_bound_and_the_latest_use() -> None:
    kept = Batch({(1, 7, NOON.date()): 3}, {1: NOON}, dropped=1)
    newer = Batch(
        {(1, 7, NOON.date()): 2, (2, 7, NOON.date()): 1, (3, 7, NOON.date()): 4},
        {1: NOON + timedelta(seconds=1), 2: NOON, 3: NOON},
    )
    kept.absorb(newer, max_keys=2)
    assert kept.calls == {(1, 7, NOON.date()): 5, (2, 7, NOON.date()): 1}
    assert kept.dropped == 1 + 4
    assert kept.last_used[1] == NOON + timedelta(seconds=1)
