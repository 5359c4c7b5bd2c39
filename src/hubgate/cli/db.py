"""``hubgate db``: the database schema."""

from __future__ import annotations

import click

from hubgate.cli.base import load, safe_url
from hubgate.db.migrate import upgrade

__all__ = ["db"]


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at HUBGATE_DATABASE_URL to the newest schema."""
    url = load().database_url
    upgrade(url)
    click.echo(f"database {safe_url(url)} is up to date")
