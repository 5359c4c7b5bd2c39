"""The ``audit-streams`` background jobs, never inside a database transaction:
every few seconds, deliver each due stream's queue in order; every minute (and
at start), bring the operator's streams in line with the settings and trim the
queues to their bound.

Delivery is at least once: a crash, or an answer lost after the receiver took an
event, sends it again later; receivers de-duplicate by the event's ``id``.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hubgate.db.types import utcnow
from hubgate.errors import HubgateError
from hubgate.streams import queue
from hubgate.streams.formats import StreamEvent, event_body, signature_header, syslog_message
from hubgate.streams.manage import sync_operator_streams
from hubgate.streams.targets import post_event, send_syslog, syslog_server

if TYPE_CHECKING:
    from hubgate.runtime import Runtime

__all__ = ["Streamer"]

log = logging.getLogger("hubgate.streams")

MAX_STREAMS_PER_PASS = 20
"""Streams delivered per pass, a batch each, so a pass ends soon enough for a shutdown."""


@dataclass(frozen=True)
class Streamer:
    rt: Runtime
    instance: str
    clock: Callable[[], datetime] = utcnow

    def maintain(self) -> int:
        """The operator's streams as the settings say; queues trimmed to their
        bound (a count of every queue, so not at each pass). How many were dropped."""
        with self.rt.db.transaction() as db:
            sync_operator_streams(db, self.rt.settings)
            return queue.trim(db, self.rt.settings.audit_stream_max_queued)

    def run(self) -> int:
        """One delivery pass; how many events were delivered."""
        sent = 0
        for _ in range(MAX_STREAMS_PER_PASS):
            with self.rt.db.transaction() as db:
                stream = queue.claim(db, self.instance, self.clock())
            if stream is None:
                break
            sent += self._deliver(stream)
        return sent

    def _deliver(self, stream: queue.Claimed) -> int:
        """Send the stream's next batch in order; the first failure stops it, and
        what went before is settled as delivered."""
        with self.rt.db.transaction() as db:
            batch = queue.pending(db, stream.id)
        done: list[int] = []
        error = None
        try:
            if stream.kind == "webhook":
                self._post_each(stream, batch, done)
            else:
                self._send_syslog(stream, [event for _, event in batch])
                done = [queue_id for queue_id, _ in batch]
        except (OSError, HubgateError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._settle(stream, done, error)
        return len(done)

    def _post_each(
        self, stream: queue.Claimed, batch: list[tuple[int, StreamEvent]], done: list[int]
    ) -> None:
        secret = self._secret(stream)
        for queue_id, event in batch:
            body = event_body(event)
            signature = signature_header(secret, int(time.time()), body)
            post_event(stream.url, body, signature, event.id, allow_private=self._private(stream))
            done.append(queue_id)

    def _send_syslog(self, stream: queue.Claimed, events: list[StreamEvent]) -> None:
        hostname = socket.gethostname()
        messages = [syslog_message(event, hostname) for event in events]
        settings = self.rt.settings
        send_syslog(
            syslog_server(stream.url), messages,
            allow_private=self._private(stream), ca_file=settings.audit_syslog_ca_file,
        )  # fmt: skip

    def _secret(self, stream: queue.Claimed) -> str:
        if stream.origin == "settings":
            return self.rt.settings.audit_webhook_secret or ""
        return self.rt.sealer.unseal(stream.secret or "")

    def _private(self, stream: queue.Claimed) -> bool:
        """The operator's own streams may reach the operator's network; an org's may
        not, unless ``HUBGATE_ALLOW_PRIVATE_IDP_URLS`` (tests, ``demo``)."""
        return stream.origin != "admin" or self.rt.settings.allow_private_idp_urls

    def _settle(self, stream: queue.Claimed, done: list[int], error: str | None) -> None:
        now = self.clock()
        with self.rt.db.transaction() as db:
            if error is None:
                queue.delivered(db, stream, done, now)
            else:
                queue.delivered_some(db, done)
                queue.failed(db, stream, error, now)
        if error is not None:
            log.warning("audit stream %d (%s): %s; will retry", stream.id, stream.kind, error)
