"""Usage per token: calls per token, deployment and day, counted in memory and
written in batches, never a database write per call.

What counts: every *allowed* forward-auth answer to a token (personal or team)
for the ``call`` action, which only deployments have (``/predict``, ``/invoke``,
``/generate``, ``/v1/...``). Reading a deployment's page or deploying it is
management, not use, and a session (a person in a browser) is not a token: those
are not counted, so ``calls`` means inference calls and nothing else. The day
is the UTC date of the answer.

Each process keeps a :class:`UsageCounter`; :meth:`UsageCounter.count` takes one
short lock and adds one to a dict entry. :meth:`UsageCounter.flush` (every
``HUBGATE_USAGE_FLUSH_SECONDS`` on a worker thread, and once more at shutdown)
takes the counts in one O(1) swap and, in one short transaction, adds them to
``token_usage`` (``calls = calls + excluded.calls``) and moves each token's
``last_used_at`` forward to its latest counted use (only that column: the
change-sequence triggers on ``tokens`` ignore it).

Failure and bounds: a failed flush (database down) keeps its batch and the next
flush writes it together with what came since, exactly once; requests never
wait for it. At most ``max_keys`` (token, deployment, day) keys are pending,
live and kept each: past that, calls to a new key are dropped and counted in
``hubgate_gate_token_calls_total{outcome="dropped"}`` and logged, while keys
already pending keep counting. Calls to a token or deployment deleted before the
flush are discarded (``outcome="orphaned"``). A hard kill (SIGKILL, power loss)
loses what was counted since the last successful flush: one interval, or more
while the database was unreachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Integer, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from hubgate import metrics
from hubgate.db.engine import Database, core
from hubgate.db.models import Resource, Token, TokenUsage
from hubgate.db.types import UtcDateTime

__all__ = ["DEFAULT_MAX_KEYS", "Batch", "UsageCounter", "write"]

log = logging.getLogger("hubgate.gate.usage")

DEFAULT_MAX_KEYS = 100_000
_ID_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit

UsageKey = tuple[int, int, date]
"""(token id, resource id, UTC day)."""


@dataclass
class Batch:
    """Counts taken from the counter, not yet written."""

    calls: dict[UsageKey, int] = field(default_factory=dict)
    last_used: dict[int, datetime] = field(default_factory=dict)
    dropped: int = 0

    def __bool__(self) -> bool:
        return bool(self.calls)

    def absorb(self, newer: Batch, max_keys: int) -> None:
        """Add ``newer``'s counts to these, keeping at most ``max_keys`` keys."""
        for key, calls in newer.calls.items():
            if key in self.calls:
                self.calls[key] += calls
            elif len(self.calls) < max_keys:
                self.calls[key] = calls
            else:
                self.dropped += calls
        for token_id, at in newer.last_used.items():
            if token_id not in self.last_used or at > self.last_used[token_id]:
                self.last_used[token_id] = at
        self.dropped += newer.dropped


class UsageCounter:
    """Per-process, thread-safe call counts; :meth:`flush` writes them."""

    def __init__(self, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._live = Batch()
        self._flushing = threading.Lock()
        self._kept = Batch()

    def count(self, token_id: int, resource_id: int, at: datetime) -> None:
        """One allowed call by ``token_id`` to ``resource_id`` at ``at`` (aware UTC)."""
        key = (token_id, resource_id, at.date())
        with self._lock:
            live = self._live
            if key in live.calls:
                live.calls[key] += 1
            elif len(live.calls) < self.max_keys:
                live.calls[key] = 1
            else:
                live.dropped += 1
                return
            last = live.last_used.get(token_id)
            if last is None or at > last:
                live.last_used[token_id] = at

    def flush(self, database: Database) -> int:
        """Write what was counted in one transaction; answers the calls written.

        On a database error the batch is kept for the next flush and 0 is
        answered: the worker thread that calls this must go on."""
        with self._flushing:
            batch = self.take()
            if not batch:
                return 0
            try:
                with database.transaction() as db:
                    written = write(db, batch)
            except SQLAlchemyError as exc:
                self._kept = batch
                _report_failure(batch, exc)
                return 0
            self._kept = Batch()
            _report_success(batch, written)
            return written

    def take(self) -> Batch:
        """What is to be written, removed from the counter: the live counts
        (swapped out under the lock, so ``count`` waits for no more than that)
        added to those a failed flush kept. :meth:`flush` writes it."""
        with self._lock:
            live, self._live = self._live, Batch()
        kept, self._kept = self._kept, Batch()
        if not kept:  # the usual case: no failed flush to catch up on
            return live
        kept.absorb(live, self.max_keys)
        return kept


def write(db: Session, batch: Batch) -> int:
    """Add ``batch`` to ``token_usage`` and move ``tokens.last_used_at`` forward;
    answers the calls written. Keys are sorted, so two instances flushing at once
    lock rows in the same order and cannot deadlock."""
    token_ids = _existing(db, Token.id, {key[0] for key in batch.calls})
    resource_ids = _existing(db, Resource.id, {key[1] for key in batch.calls})
    kept = [
        (key, calls)
        for key, calls in sorted(batch.calls.items())
        if key[0] in token_ids and key[1] in resource_ids
    ]
    if kept:
        _upsert(db, kept)
    uses = [{"token": t, "at": at} for t, at in sorted(batch.last_used.items()) if t in token_ids]
    if uses:
        core(db).execute(_TOUCH, uses)
    return sum(calls for _, calls in kept)


def _existing(db: Session, column: InstrumentedAttribute[int], ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` still exist: a token or deployment deleted since it was
    counted must not fail the whole batch on its foreign key."""
    wanted = sorted(ids)
    found: set[int] = set()
    for start in range(0, len(wanted), _ID_CHUNK):
        chunk = wanted[start : start + _ID_CHUNK]
        found.update(db.scalars(select(column).where(column.in_(chunk))))
    return found


def _upsert(db: Session, kept: list[tuple[UsageKey, int]]) -> None:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET calls = calls + excluded.calls``."""
    if db.get_bind().dialect.name == "postgresql":
        columns = list(zip(*((t, r, d, calls) for (t, r, d), calls in kept), strict=True))
        core(db).execute(_PG_UPSERT, dict(zip(_COLUMNS, columns, strict=True)))
    else:
        rows = [{"token_id": t, "resource_id": r, "day": d, "calls": n} for (t, r, d), n in kept]
        core(db).execute(_SQLITE_UPSERT, rows)


_COLUMNS = ("token_id", "resource_id", "day", "calls")
_KEY = [TokenUsage.token_id, TokenUsage.resource_id, TokenUsage.day]

# SQLite: one execution per row (executemany), in process, with no round trip.
_sqlite_insert = sqlite.insert(TokenUsage)
_SQLITE_UPSERT = _sqlite_insert.on_conflict_do_update(
    index_elements=_KEY, set_={"calls": TokenUsage.calls + _sqlite_insert.excluded.calls}
)

# PostgreSQL: every row in one statement, as four arrays unnested into rows: one
# statement to parse, plan and send instead of one per row (executemany). On an
# idle machine 10,000 rows took 100-190 ms this way and 390 ms by executemany;
# under load the two come closer (bench/usage.py gives the flush time).
_ROWS = (
    func.unnest(
        bindparam("token_id", type_=ARRAY(Integer)),
        bindparam("resource_id", type_=ARRAY(Integer)),
        bindparam("day", type_=ARRAY(Date)),
        bindparam("calls", type_=ARRAY(BigInteger)),
    )  # fmt: skip
    .table_valued(*_COLUMNS)
    .render_derived()
)
_pg_insert = postgresql.insert(TokenUsage).from_select(_COLUMNS, select(_ROWS))
_PG_UPSERT = _pg_insert.on_conflict_do_update(
    index_elements=_KEY, set_={"calls": TokenUsage.calls + _pg_insert.excluded.calls}
)

_TOKENS = Token.__table__
# The later of the stored and the counted time; only ``last_used_at`` changes.
_TOUCH = (
    update(Token)
    .where(
        _TOKENS.c.id == bindparam("token"),
        or_(
            _TOKENS.c.last_used_at.is_(None),
            _TOKENS.c.last_used_at < bindparam("at", type_=UtcDateTime()),
        ),
    )
    .values(last_used_at=bindparam("at", type_=UtcDateTime()))
)


def _report_success(batch: Batch, written: int) -> None:
    counted = sum(batch.calls.values())
    metrics.GATE_TOKEN_CALLS.labels("written").inc(written)
    metrics.GATE_TOKEN_CALLS.labels("orphaned").inc(counted - written)
    metrics.USAGE_FLUSHES.labels("ok").inc()
    metrics.USAGE_PENDING_KEYS.set(0)
    _report_dropped(batch)


def _report_failure(batch: Batch, exc: SQLAlchemyError) -> None:
    metrics.USAGE_FLUSHES.labels("failed").inc()
    metrics.USAGE_PENDING_KEYS.set(len(batch.calls))
    log.warning(
        "token usage not written (%s): %d keys kept for the next flush",
        type(exc).__name__, len(batch.calls),
    )  # fmt: skip
    _report_dropped(batch)
    batch.dropped = 0


def _report_dropped(batch: Batch) -> None:
    if batch.dropped:
        metrics.GATE_TOKEN_CALLS.labels("dropped").inc(batch.dropped)
        log.warning(
            "token usage: %d calls not counted, too many (token, deployment, day) keys "
            "were pending (HUBGATE_USAGE_MAX_KEYS)", batch.dropped,
        )  # fmt: skip
