"""``hubgate audit-stream``: where audit events are streamed. Without ``--org``,
the operator's streams, which take every org's events (besides those of
``HUBGATE_AUDIT_WEBHOOK_URL`` and ``HUBGATE_AUDIT_SYSLOG_URL``)."""

from __future__ import annotations

from dataclasses import asdict

import click

from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.operator import operator, operator_principal
from hubgate.orgs import service
from hubgate.streams import manage

__all__ = ["audit_stream"]

_ORG = click.option("--org", "org_name", metavar="NAME", help="This org's streams only.")


@click.group("audit-stream")
def audit_stream() -> None:
    """Audit streams: webhooks (https://) and syslog servers (tcp:// or tls://)."""


@audit_stream.command("add")
@_ORG
@click.argument("kind", type=click.Choice(["webhook", "syslog"]))
@click.argument("url")
@json_option
def add(org_name: str | None, kind: str, url: str) -> None:
    """Stream audit events to URL from now on; a webhook's signing secret is
    printed this once."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name) if org_name else None
        status, secret = manage.create_stream(
            db, rt, operator(), operator_principal(), org, kind, url
        )
    emit({**asdict(status), "secret": secret}, f"{status.id}\n{secret or ''}".rstrip())


@audit_stream.command("list")
@_ORG
@json_option
def list_(org_name: str | None) -> None:
    """The streams, with what is queued and since when one is failing."""
    with runtime().db.transaction() as db:
        if org_name:
            found = manage.list_streams(db, operator_principal(), service.get_org(db, org_name))
        else:
            found = manage.operator_streams(db)
    rows = [[str(s.id), s.kind, s.url, str(s.queued), _state(s), s.last_error or ""] for s in found]
    emit(
        [asdict(s) for s in found],
        lambda: table(rows, ["ID", "KIND", "URL", "QUEUED", "STATE", "LAST ERROR"]),
    )


def _state(status: manage.StreamStatus) -> str:
    if status.failing_since:
        return f"failing since {status.failing_since:%Y-%m-%d %H:%M:%S}"
    return "ok"


@audit_stream.command("remove")
@_ORG
@click.argument("stream_id", type=click.IntRange(min=1))
@json_option
def remove(org_name: str | None, stream_id: int) -> None:
    """Stop streaming to a stream; its queued events are dropped."""
    with runtime().db.transaction() as db:
        org = service.get_org(db, org_name) if org_name else None
        manage.remove_stream(db, operator(), operator_principal(), org, stream_id)
    emit({"id": stream_id, "removed": True}, f"Removed audit stream {stream_id}.")
