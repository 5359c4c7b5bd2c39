"""Plumbing shared by the ``hubgate`` commands: settings, the runtime, output, errors.

Every command prints people-readable text by default and JSON with ``--json``.
A :class:`~hubgate.errors.HubgateError` ends the command with exit code 1 and
``error: <code>: <message>`` on stderr (a JSON object with ``--json``), never a
traceback.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from hubgate.config import Settings, load_settings
from hubgate.errors import ConfigInvalid, DatabaseUnreachable, HubgateError
from hubgate.runtime import Runtime, build_runtime

__all__ = [
    "HubgateGroup",
    "emit",
    "host_option",
    "json_option",
    "load",
    "port_option",
    "runtime",
    "safe_url",
    "table",
    "wants_json",
]

host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
port_option = click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port."
)

_JSON = "hubgate.json"
_RUNTIME = "hubgate.runtime"
F = TypeVar("F", bound=Callable[..., Any])


def load(**overrides: object) -> Settings:
    """The settings, or a clean ``invalid_config`` error naming what is wrong."""
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        raise ConfigInvalid(_config_message(exc)) from exc


def _config_message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(part) for part in error["loc"])
        lines.append(f"HUBGATE_{field.upper()}: {message}" if field else message)
    return " ".join(lines)


def runtime() -> Runtime:
    """The runtime for this invocation, built once and disposed when the command ends."""
    root = click.get_current_context().find_root()
    found = root.meta.get(_RUNTIME)
    if isinstance(found, Runtime):
        return found
    built = build_runtime(load())
    root.meta[_RUNTIME] = built
    root.call_on_close(built.db.engine.dispose)
    return built


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- output ------------------------------------------------------------------


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_JSON] = True


def json_option(function: F) -> F:
    """``--json``: print machine-readable output (and errors) instead of text."""
    option = click.option(
        "--json", is_flag=True, expose_value=False, is_eager=True,
        callback=_remember_json, help="Print JSON instead of text.",
    )  # fmt: skip
    return option(function)


def wants_json() -> bool:
    return bool(click.get_current_context().meta.get(_JSON))


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(data: object, *, indent: int | None = 2) -> str:
    return json.dumps(data, indent=indent, default=_default, ensure_ascii=False)


def emit(data: object, text: str | Callable[[], str]) -> None:
    """Print ``data`` as JSON with ``--json``, else the text."""
    if wants_json():
        click.echo(dumps(data))
    else:
        click.echo(text() if callable(text) else text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned table; ``(none)`` when there are no rows."""
    if not rows:
        return "(none)"
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


# -- errors ------------------------------------------------------------------


def _fail(ctx: click.Context, error: HubgateError) -> None:
    if ctx.meta.get(_JSON):
        click.echo(dumps({"error": error.code, "message": error.message}, indent=None), err=True)
    else:
        click.echo(f"error: {error.code}: {error.message}", err=True)
    ctx.exit(1)


def _database_error(exc: OperationalError | ProgrammingError) -> HubgateError:
    reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
    return DatabaseUnreachable(
        f"The database is unreachable or not migrated (run 'hubgate db upgrade'): {reason}"
    )


class HubgateGroup(click.Group):
    """The root group: turns hubgate's own errors into one clean line and exit code 1.

    Its command groups are named in ``lazy`` (``name: "module:attribute"``) and
    imported when a command line names them: each imports services, and all of
    them together cost every ``hubgate`` command over a second of imports before
    it did anything (a listing, ``--help``, still imports them all)."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{self.lazy[cmd_name]} is not the {cmd_name!r} command.")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HubgateError as exc:
            _fail(ctx, exc)
        except (OperationalError, ProgrammingError) as exc:
            _fail(ctx, _database_error(exc))
        return None
