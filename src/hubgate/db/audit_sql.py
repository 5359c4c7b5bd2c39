"""SQL over the audit log that SQLite and PostgreSQL spell differently: the hour
or day an event falls in, and the SSO connection a sign-in event names.

Each renders as constant SQL (no bound parameters), so the very same text can
sit in SELECT and GROUP BY: PostgreSQL binds parameters server-side and would
otherwise see two different expressions. No ``%`` either: psycopg would take it
for a placeholder."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from hubgate.db.models import AuditEvent

__all__ = ["SIGNED_IN", "SIGN_IN_REFUSED", "connection_of", "truncated"]

SIGNED_IN, SIGN_IN_REFUSED = "sso.login", "sso.login_refused"
_PREFIX = "connection:"  # a refusal's target (sso.flows.signin._refused)


class _Truncated(FunctionElement[str]):
    """``at`` as text cut to its first ``chars`` characters of ``YYYY-MM-DD HH``.
    A class per length: the statement cache keys on the class, not on attributes."""

    type = String()
    inherit_cache = True
    chars = 13


class _Hour(_Truncated):
    inherit_cache = True


class _Day(_Truncated):
    inherit_cache = True
    chars = 10


class _ConnectionOf(FunctionElement[str]):
    """The connection id, as text, of an ``sso.login`` (its data's ``connection``)
    or ``sso.login_refused`` (its target ``connection:<id>``); NULL otherwise."""

    type = String()
    inherit_cache = True


def truncated(chars: int) -> ColumnElement[str]:
    """13 characters name the hour, 10 the day."""
    return {13: _Hour, 10: _Day}[chars]()


def connection_of() -> ColumnElement[str]:
    return _ConnectionOf()


_TABLE = AuditEvent.__tablename__


@compiles(_Truncated, "sqlite")
def _truncated_sqlite(element: _Truncated, compiler: Any, **kw: Any) -> str:
    """SQLite keeps datetimes as ``YYYY-MM-DD HH:MM:SS.ffffff`` text."""
    return f"substr({_TABLE}.at, 1, {int(element.chars)})"


@compiles(_Truncated, "postgresql")
def _truncated_pg(element: _Truncated, compiler: Any, **kw: Any) -> str:
    return f"substr(to_char({_TABLE}.at, 'YYYY-MM-DD HH24'), 1, {int(element.chars)})"


def _connection_case(json_text: str) -> str:
    return (
        f"CASE WHEN {_TABLE}.action = '{SIGN_IN_REFUSED}'"
        f" AND substr({_TABLE}.target, 1, {len(_PREFIX)}) = '{_PREFIX}'"
        f" THEN substr({_TABLE}.target, {len(_PREFIX) + 1})"
        f" WHEN {_TABLE}.action = '{SIGNED_IN}' THEN {json_text} END"
    )


@compiles(_ConnectionOf, "sqlite")
def _connection_sqlite(element: _ConnectionOf, compiler: Any, **kw: Any) -> str:
    return _connection_case(f"CAST(json_extract({_TABLE}.data, '$.connection') AS TEXT)")


@compiles(_ConnectionOf, "postgresql")
def _connection_pg(element: _ConnectionOf, compiler: Any, **kw: Any) -> str:
    return _connection_case(f"(CAST({_TABLE}.data AS json) ->> 'connection')")
