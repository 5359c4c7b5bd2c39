"""The change sequence: one counter the database bumps, in the writing transaction,
whenever a row that can alter an access decision changes.

Forward-auth caches its answers per process (:mod:`hubgate.gate.cache`); an answer
is kept only while the counter it was computed under is still the current one.
Triggers, not application code, bump it, so no path that writes these tables (the
API, the pages, SCIM, a sign-in, a logout, the CLI, a cascade) can forget to.

Every instance reads the counter before it trusts its cache
(:mod:`hubgate.gate.changes`). The counter is a row (on PostgreSQL the sum of
:data:`SHARDS` rows), not a sequence: a bump becomes visible exactly when the
change does (at commit), which a
``nextval`` (visible at once) or a ``NOTIFY`` (delivered after the commit, racing
the client's next request to another instance) cannot promise. Every bump adds one
and none subtracts, so the sum moves whenever anything committed.

PostgreSQL's rows are shards because a bump holds its row's lock until commit: a
transaction bumps the row its transaction id picks, so concurrent writers
(sign-ins opening sessions, say) rarely wait for each other, and one transaction
only ever locks one row (no lock-order deadlock). SQLite writes one transaction at
a time anyway: it keeps one row, ``id`` 1, which each check reads by its key.

:data:`WATCHED` is the inventory: a table, and the columns whose UPDATE matters
(``None``: any column). Inserts count only where a new row can turn a refusal
into an answer (a membership, a team place); a new session or token cannot,
since nobody could have presented its secret before. A new SSO authentication
can only end an ``sso_required`` refusal, and the gate never keeps those
(:mod:`hubgate.gate.asgi`): every sign-in inserts one, and bumping on it would
empty every instance's cache at each sign-in (and, on SQLite, write one more
page per sign-in). Columns that
change on every use (``sessions.last_seen_at``, ``tokens.last_used_at``) are left
out on purpose: bumping on them would empty every cache on each check.

The migration that creates a watched table installs its triggers; one that
rebuilds a watched table on SQLite (``batch_alter_table`` with a change SQLite
cannot ALTER) drops them and must call :func:`install` again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

__all__ = [
    "SHARDS",
    "TABLE",
    "WATCHED",
    "Watch",
    "create_function",
    "drop_function",
    "expected_names",
    "read_statement",
    "install",
    "installed",
    "uninstall",
    "watch_of",
]

TABLE = "gate_changes"
SHARDS = 64
"""PostgreSQL: rows ``id`` 0 to ``SHARDS - 1``; the sequence is their sum."""

_READ_POSTGRESQL = (
    f"SELECT CASE WHEN count(*) = {SHARDS} THEN sum(seq) END "
    f"FROM {TABLE} WHERE id >= 0 AND id < {SHARDS}"
)
_READ_SQLITE = f"SELECT seq FROM {TABLE} WHERE id = 1"


def read_statement(dialect: str) -> str:
    """The statement that reads the sequence on ``dialect`` (``postgresql`` or
    ``sqlite``): no row, or NULL, when a row a bump needs is missing (that bump
    would be lost, so the reader must not trust its cache)."""
    return _READ_POSTGRESQL if dialect == "postgresql" else _READ_SQLITE


_FUNCTION = "hubgate_gate_bump"


@dataclass(frozen=True, slots=True)
class Watch:
    """Which writes to one table bump the sequence."""

    table: str
    inserts: bool = True
    updates: tuple[str, ...] | None = None
    """The columns whose UPDATE bumps; ``None``: any column."""


WATCHED: tuple[Watch, ...] = (
    Watch("orgs", updates=("name",)),
    Watch("org_sso", updates=("mode", "optional", "session_timeout_seconds")),
    Watch("memberships"),
    Watch("teams"),
    Watch("team_memberships"),
    Watch("resources"),
    Watch("emails", updates=("address", "is_primary", "user_id")),
    Watch("sessions", inserts=False, updates=("expires_at", "user_id")),
    Watch(
        "tokens",
        inserts=False,
        updates=("revoked_at", "expires_at", "scopes", "user_id", "team_id", "org_id"),
    ),
    Watch("sso_authentications", inserts=False),
    Watch("deployment_routes"),
)


def watch_of(table: str) -> Watch:
    """The entry of :data:`WATCHED` for ``table`` (for the migration that makes it)."""
    return next(watch for watch in WATCHED if watch.table == table)


def install(connection: Connection, watch: Watch) -> None:
    """Create ``watch``'s triggers (replacing any of the same name)."""
    uninstall(connection, watch.table)
    postgresql = connection.dialect.name == "postgresql"
    _create(connection, watch, _POSTGRESQL_BODY if postgresql else _SQLITE_BODY)


def uninstall(connection: Connection, table: str) -> None:
    for name in _names(table):
        if connection.dialect.name == "postgresql":
            connection.execute(text(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"'))
        else:
            connection.execute(text(f'DROP TRIGGER IF EXISTS "{name}"'))


def installed(connection: Connection) -> set[str]:
    """The names of the sequence's triggers in the database, for a test that
    compares them with :data:`WATCHED`."""
    if connection.dialect.name == "postgresql":
        query = "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'gate_bump_%'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'gate_bump_%'"
    return {row[0] for row in connection.execute(text(query))}


def expected_names(watch: Watch) -> set[str]:
    """The triggers :func:`install` makes for ``watch``."""
    return {name for name, _ in _events(watch)}


def create_function(connection: Connection) -> None:
    """PostgreSQL: the trigger function (replacing the one of the same name)."""
    connection.execute(
        text(
            f"""
            CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE {TABLE} SET seq = seq + 1 WHERE id = txid_current() % {SHARDS};
                RETURN NULL;
            END $$
            """
        )
    )


def drop_function(connection: Connection) -> None:
    connection.execute(text(f"DROP FUNCTION IF EXISTS {_FUNCTION}()"))


def _names(table: str) -> tuple[str, str, str]:
    return (f"gate_bump_{table}_insert", f"gate_bump_{table}_update", f"gate_bump_{table}_delete")


def _update_event(watch: Watch) -> str:
    if watch.updates is None:
        return "UPDATE"
    return "UPDATE OF " + ", ".join(watch.updates)


def _events(watch: Watch) -> list[tuple[str, str]]:
    """(trigger name, event) for each write of ``watch`` that bumps the sequence."""
    insert, update, delete = _names(watch.table)
    events = [(update, _update_event(watch)), (delete, "DELETE")]
    if watch.inserts:
        events.append((insert, "INSERT"))
    return events


# PostgreSQL: statement-level triggers, one bump per statement however many rows.
# SQLite has row-level triggers only (a cascade fires them too).
_POSTGRESQL_BODY = f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
_SQLITE_BODY = f"BEGIN UPDATE {TABLE} SET seq = seq + 1 WHERE id = 1; END"


def _create(connection: Connection, watch: Watch, body: str) -> None:
    for name, event in _events(watch):
        connection.execute(text(f'CREATE TRIGGER "{name}" AFTER {event} ON "{watch.table}" {body}'))
