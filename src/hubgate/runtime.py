"""What every service call needs from the running instance, built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hubgate.accounts.mail import Mailer, OutboxMailer
from hubgate.accounts.passwords import Passwords
from hubgate.accounts.sessions import Lifetimes
from hubgate.accounts.throttle import Limits
from hubgate.config import Settings
from hubgate.db.engine import Database, create_database
from hubgate.db.types import utcnow
from hubgate.sealed import Sealer

__all__ = ["Runtime", "build_runtime"]


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    passwords: Passwords
    mailer: Mailer
    sealer: Sealer

    @property
    def lifetimes(self) -> Lifetimes:
        return Lifetimes(
            idle=timedelta(seconds=self.settings.session_idle_seconds),
            absolute=timedelta(seconds=self.settings.session_absolute_seconds),
        )

    @property
    def limits(self) -> Limits:
        return Limits(
            window=timedelta(seconds=self.settings.throttle_window_seconds),
            per_account=self.settings.throttle_account_failures,
            per_address=self.settings.throttle_address_failures,
        )

    @staticmethod
    def now() -> datetime:
        return utcnow()

    def url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + path


def build_runtime(settings: Settings, database: Database | None = None) -> Runtime:
    return Runtime(
        settings=settings,
        db=database or create_database(settings.database_url, pool_size=settings.request_threads),
        passwords=Passwords(
            memory_kib=settings.password_memory_kib, time_cost=settings.password_time_cost
        ),
        mailer=OutboxMailer(),
        sealer=Sealer(settings),
    )
