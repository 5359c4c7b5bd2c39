"""``hubgate keys list|rotate``: the keys that sign forward-auth's upstream
assertions (``HUBGATE_UPSTREAM_ASSERTION``; :mod:`hubgate.signing_keys`)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import IntegrityError

from hubgate import signing_keys
from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.db.models import SigningKey
from hubgate.errors import Conflict
from hubgate.operator import operator

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """hubgate's signing keys, published at /.well-known/jwks.json."""


def _describe(row: SigningKey) -> dict[str, Any]:
    return {
        "kid": row.kid, "algorithm": row.algorithm, "created_at": row.created_at,
        "activated_at": row.activated_at, "retired_at": row.retired_at,
    }  # fmt: skip


@keys.command("list")
@json_option
def keys_list() -> None:
    """Every stored key and when it signs (retired keys leave once their assertions
    have expired)."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [_describe(row) for row in signing_keys.all_keys(db)]
    emit(rows, lambda: table(
        [[r["kid"], r["algorithm"], str(r["activated_at"]), str(r["retired_at"] or "")]
         for r in rows],
        ["kid", "alg", "signs from", "retired at"],
    ))  # fmt: skip


@keys.command("rotate")
@click.option(
    "--now", "at_once", is_flag=True,
    help="For a leaked key: the new key signs at once and the old ones leave the key set "
    "now (verifiers drop them when their cached copy expires, within 5 minutes).",
)  # fmt: skip
@json_option
def keys_rotate(at_once: bool) -> None:
    """Make a new key: published now, it signs from ten minutes on (so verifiers
    caching the key set have it first), when the current key retires."""
    rt = runtime()
    try:
        with rt.db.transaction() as db:
            row = signing_keys.rotate(db, rt.sealer, operator(), rt.now(), at_once=at_once)
            data = _describe(row)
    except IntegrityError as exc:
        raise Conflict(
            "Another instance made a key at the same moment; see 'hubgate keys list'.",
            code="rotation_raced",
        ) from exc
    emit(data, lambda: f"new key {data['kid']} signs from {data['activated_at']}")
