"""``hubgate token|audit|mail``: access tokens, the audit log and the mail outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from itertools import islice

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Scope
from hubgate.accounts import tokens
from hubgate.accounts.emails import normalize_email
from hubgate.cli.base import dumps, emit, json_option, runtime, table, wants_json
from hubgate.db.models import AuditEvent, OutboxMail
from hubgate.errors import SmtpNotConfigured
from hubgate.mail.sender import build_sender
from hubgate.operator import operator, operator_principal, revoke_token, user_by_email
from hubgate.orgs import service, team_tokens
from hubgate.runtime import Runtime

__all__ = ["audit_command", "mail", "token"]

_AUDIT_LIMIT = 50


@click.group()
def token() -> None:
    """Access tokens: personal (--user) or team (--org and --team)."""


@token.command("create")
@click.option("--user", "user_email", metavar="EMAIL", help="Personal token of this account.")
@click.option("--org", "org_name", metavar="NAME", help="Team token: the org.")
@click.option("--team", "team_name", metavar="TEAM", help="Team token: the team.")
@click.option("--name", required=True, help="A name to recognize the token by.")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice([s.value for s in Scope]),
    help="Repeatable. Personal: read, write. Team: full, inference, read.",
)  # fmt: skip
@click.option("--expires-days", type=click.IntRange(min=1), help="Expire after D days.")
@json_option
def token_create(
    user_email: str | None,
    org_name: str | None,
    team_name: str | None,
    name: str,
    scopes: tuple[str, ...],
    expires_days: int | None,
) -> None:
    """Create a token and print its secret: it is shown this once only.

    A team token is owned by the org's first admin and audited as the operator.
    """
    _check_token_target(user_email, org_name, team_name)
    rt = runtime()
    with rt.db.transaction() as db:
        if user_email is not None:
            new = _personal(db, rt, user_email, name, list(scopes), expires_days)
        else:
            new = _team(db, rt, str(org_name), str(team_name), name, list(scopes), expires_days)
        data = _token_json(new, org_name, team_name)
    if not wants_json():
        click.echo(
            f"token {data['id']} ({new.row.scopes}): store it now, it is not shown again", err=True
        )
    emit(data, new.secret)


def _check_token_target(user: str | None, org: str | None, team: str | None) -> None:
    if user is not None and (org is None and team is None):
        return
    if user is None and org is not None and team is not None:
        return
    raise click.UsageError("Give either --user EMAIL, or --org NAME and --team TEAM.")


def _personal(
    db: Session, rt: Runtime, email: str, name: str, scopes: list[str], days: int | None
) -> tokens.NewToken:
    owner = user_by_email(db, email)
    return tokens.create_personal(db, operator(), owner.id, name, scopes, days, rt.now())


def _team(
    db: Session, rt: Runtime, org: str, team: str, name: str, scopes: list[str], days: int | None
) -> tokens.NewToken:
    found = service.get_org(db, org)
    found_team = service.get_team(db, found, team)
    principal = operator_principal()
    return team_tokens.create(
        db, operator(), principal, found, found_team, name, scopes, days, rt.now()
    )


def _token_json(new: tokens.NewToken, org: str | None, team: str | None) -> dict[str, object]:
    row = new.row
    return {
        "id": row.id, "kind": row.kind, "name": row.name, "scopes": row.scopes.split(),
        "org": org, "team": team, "expires_at": row.expires_at, "token": new.secret,
    }  # fmt: skip


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@json_option
def token_revoke(token_id: int) -> None:
    """Revoke the token ID (personal or team); revoking twice is harmless."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = revoke_token(db, operator(), token_id, rt.now())
        data = {"id": row.id, "kind": row.kind, "revoked_at": row.revoked_at}
    emit(data, f"token {token_id} revoked")


# -- audit -------------------------------------------------------------------


class _Instant(click.ParamType):
    """An ISO 8601 date or time; without a zone it is UTC."""

    name = "ISO"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO 8601 date or time, e.g. 2025-01-31T12:00Z", param, ctx
            )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("audit")
@click.option("--org", "org_name", metavar="NAME", help="Only this org's events.")
@click.option("--actor", help="Only events by this actor label (an email, operator:cli ...).")
@click.option("--action", help="Only this action, e.g. member.role_changed.")
@click.option("--since", type=_Instant(), help="Only events at or after this time (UTC).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help=f"At most N events [default: {_AUDIT_LIMIT}; all with --jsonl].",
)
@click.option("--jsonl", is_flag=True, help="Print one JSON object per line (for exports).")
@json_option
def audit_command(
    org_name: str | None,
    actor: str | None,
    action: str | None,
    since: datetime | None,
    limit: int | None,
    jsonl: bool,
) -> None:
    """Show audit events, newest first."""
    with runtime().db.transaction() as db:
        org_id = service.get_org(db, org_name).id if org_name else None
        where = audit.AuditFilter(org_id=org_id, actor=actor, action=action, since=since)
        if jsonl:
            _print_jsonl(islice(audit.iter_all(db, where), limit))
            return
        events = audit.query(db, replace(where, limit=limit or _AUDIT_LIMIT))
        data = [audit.event_json(e) for e in events]
    emit(data, lambda: _audit_table(events))


def _print_jsonl(events: Iterable[AuditEvent]) -> None:
    for event in events:
        click.echo(dumps(audit.event_json(event), indent=None))


def _audit_table(events: list[AuditEvent]) -> str:
    rows = [
        [
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.action,
            e.actor,
            e.target,
            e.reason or "",
            e.trace_id,
        ]
        for e in events
    ]
    return table(rows, ["AT (UTC)", "ACTION", "ACTOR", "TARGET", "REASON", "TRACE"])


# -- mail --------------------------------------------------------------------


@click.group()
def mail() -> None:
    """The mail outbox, and its delivery over SMTP (HUBGATE_SMTP_URL)."""


@mail.command("outbox")
@click.option("--to", "recipient", metavar="EMAIL", help="Only mail to this address.")
@click.option("--failed", is_flag=True, help="Only mail given up after its last attempt.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@json_option
def mail_outbox(recipient: str | None, failed: bool, limit: int) -> None:
    """Show the outbox, newest first, with each message's delivery status."""
    statement = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)
    if recipient:
        statement = statement.where(OutboxMail.recipient == normalize_email(recipient))
    if failed:
        statement = statement.where(OutboxMail.status == "failed")
    with runtime().db.transaction() as db:
        rows = list(db.scalars(statement))
    emit([_mail_json(m) for m in rows], lambda: _mail_text(rows))


def _mail_json(m: OutboxMail) -> dict[str, object]:
    return {
        "id": m.id, "to": m.recipient, "subject": m.subject, "body": m.body,
        "created_at": m.created_at, "status": m.status, "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at if m.status == "pending" else None,
        "sent_at": m.sent_at, "last_error": m.last_error,
    }  # fmt: skip


def _mail_text(rows: list[OutboxMail]) -> str:
    if not rows:
        return "(no mail)"
    blocks = [
        f"#{m.id}  {m.created_at:%Y-%m-%d %H:%M:%S}  to {m.recipient}  {_delivery(m)}\n"
        f"Subject: {m.subject}\n\n{m.body.rstrip()}"
        for m in rows
    ]
    return ("\n\n" + "-" * 60 + "\n").join(blocks)


def _delivery(m: OutboxMail) -> str:
    """``sent``, ``pending`` or ``failed``, with the attempts and the last error."""
    if m.status == "sent" or not m.attempts:
        return f"[{m.status}]"
    return f"[{m.status} after {m.attempts} attempt(s): {m.last_error}]"


@mail.command("send")
@json_option
def mail_send() -> None:
    """Deliver the mail that is due now, once, over HUBGATE_SMTP_URL.

    Every instance also does this in the background; this command is for
    operators and scripts. Exits with code 1 when no SMTP server is configured.
    """
    rt = runtime()
    sender = build_sender(rt)
    if sender is None:
        raise SmtpNotConfigured()
    report = sender.send_due()
    data = {"sent": report.sent, "retried": report.retried, "failed": report.failed}
    emit(data, f"sent {report.sent}, to retry {report.retried}, failed {report.failed}")
