"""``hubgate sso mode|enforce|settings|join-link|role-map|team-map|invite|invitations|
invite-resend|invite-revoke|collaborator|end-sessions`` and ``sso connection
activate|deactivate``: an org's SSO policy, for operators. Each calls the same
service function as the API, as the operator."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

from hubgate.access import OrgRole, TeamRole
from hubgate.cli.base import emit, json_option, runtime
from hubgate.cli.sso import connection, sso
from hubgate.errors import BadRequest
from hubgate.operator import operator, operator_principal, user_by_email
from hubgate.orgs import service
from hubgate.provisioning import mappings as scim_mappings
from hubgate.sso import (
    activation,
    connection_summary,
    connections,
    invitations,
    mappings,
    members,
    policy,
    setup,
)

__all__ = ["parse_duration", "sso"]

org_option = click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")
_DURATION = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
ORG_ROLES = click.Choice([r.label for r in OrgRole])


def parse_duration(text: str) -> timedelta:
    """``90m``, ``72h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise BadRequest("Give a duration like 90m, 72h or 7d.", code="invalid_duration")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _settings_text(data: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in data.items())


@sso.command("mode")
@org_option
@click.argument("mode", type=click.Choice(list(policy.MODE_NAMES)))
@json_option
def sso_mode(org_name: str, mode: str) -> None:
    """Set the org's SSO mode: off, basic, basic-optional or managed."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        policy.set_mode(db, rt, operator(), operator_principal(), org, mode)
        data = policy.describe(db, org)
    emit(data, lambda: _settings_text(data))


@sso.command("enforce")
@org_option
@click.argument("state", type=click.Choice(["on", "off"]))
@json_option
def sso_enforce(org_name: str, state: str) -> None:
    """Lift (off) or restore (on) managed mode's enforcement; audited."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        policy.set_enforcement(db, rt, operator(), operator_principal(), org, state == "on")
        data = policy.describe(db, org)
    emit(data, lambda: _settings_text(data))


@sso.command("settings")
@org_option
@click.option("--session-timeout", metavar="DURATION", help="e.g. 8h or 7d (1h to 90d).")
@click.option("--default-role", type=ORG_ROLES, help="The role of newcomers.")
@click.option("--default-team", metavar="TEAM", help="The team newcomers join.")
@json_option
def sso_settings(
    org_name: str, session_timeout: str | None, default_role: str | None, default_team: str | None
) -> None:
    """Show the org's SSO settings, or change the timeout and the defaults."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        if session_timeout or default_role or default_team:
            policy.update_defaults(
                db, rt, operator(), operator_principal(), org,
                session_timeout=parse_duration(session_timeout) if session_timeout else None,
                default_role=OrgRole.parse(default_role) if default_role else None,
                default_team=default_team,
            )  # fmt: skip
        data = policy.describe(db, org)
    emit(data, lambda: _settings_text(data))


@sso.command("join-link")
@org_option
@click.option("--rotate", is_flag=True, help="Make a new link; the old one dies at once.")
@click.option(
    "--expires", metavar="DURATION", help="e.g. 30d: the link ends then (with --rotate or alone)."
)
@click.option("--no-expiry", is_flag=True, help="The current link never ends.")
@json_option
def sso_join_link(org_name: str, rotate: bool, expires: str | None, no_expiry: bool) -> None:
    """Show the org's join link; --rotate makes a new one, --expires or --no-expiry
    changes when the current one ends (each change audited)."""
    if expires and no_expiry:
        raise click.UsageError("Give --expires or --no-expiry, not both.")
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        ttl = parse_duration(expires) if expires else None
        if rotate:
            invitations.rotate_join_link(db, rt, operator(), operator_principal(), org, ttl)
        elif expires or no_expiry:
            invitations.set_join_link_expiry(db, rt, operator(), operator_principal(), org, ttl)
        data = invitations.join_link(db, rt, operator_principal(), org).public()
    emit(data, lambda: _join_link_text(data))


def _join_link_text(data: dict[str, Any]) -> str:
    if data["state"] == "none":
        return "no join link (make one with --rotate)"
    if data["state"] == "hidden":
        return "the join link was made before hubgate kept links: --rotate to see a new one"
    until = f" (expires {data['expires_at']})" if data["expires_at"] else " (no expiry)"
    expired = "expired: " if data["state"] == "expired" else ""
    return f"{expired}{data['join_url']}{until}"


def _rule(text: str, parts: int) -> list[str]:
    attribute, _, rest = text.partition("=")
    pieces = rest.rsplit(":", parts - 2) if rest else []
    if not attribute or len(pieces) != parts - 1 or not all(pieces):
        shape = "ATTRIBUTE=VALUE:ROLE" if parts == 3 else "ATTRIBUTE=VALUE:TEAM:ROLE"
        raise click.BadParameter(f"{text!r} is not {shape}")
    return [attribute, *pieces]


@sso.command("role-map")
@org_option
@click.option("--map", "rules", multiple=True, metavar="ATTRIBUTE=VALUE:ROLE")
@json_option
def sso_role_map(org_name: str, rules: tuple[str, ...]) -> None:
    """Replace the org's role mappings, e.g. --map groups=hub-admins:admin."""
    parsed = [_rule(r, 3) for r in rules]
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        items = [mappings.RoleRule(a, v, _role(r)) for a, v, r in parsed]
        scim_mappings.set_role_mappings(db, operator(), operator_principal(), org, items)
    data = [{"attribute": a, "value": v, "role": r} for a, v, r in parsed]
    emit(data, f"{len(data)} role mapping(s) set")


@sso.command("team-map")
@org_option
@click.option("--map", "rules", multiple=True, metavar="ATTRIBUTE=VALUE:TEAM:ROLE")
@json_option
def sso_team_map(org_name: str, rules: tuple[str, ...]) -> None:
    """Replace the org's team mappings, e.g. --map groups=ml-research:research:write."""
    parsed = [_rule(r, 4) for r in rules]
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        items = [(a, v, t, _team_role(r)) for a, v, t, r in parsed]
        mappings.set_team_mappings(db, operator(), operator_principal(), org, items)
    data = [{"attribute": a, "value": v, "team": t, "team_role": r} for a, v, t, r in parsed]
    emit(data, f"{len(data)} team mapping(s) set")


def _role(text: str) -> OrgRole:
    try:
        return OrgRole.parse(text)
    except KeyError:
        raise click.BadParameter(f"{text!r} is not an org role") from None


def _team_role(text: str) -> TeamRole:
    try:
        return TeamRole.parse(text)
    except KeyError:
        raise click.BadParameter(f"{text!r} is not a team role") from None


@sso.command("invite")
@org_option
@click.argument("email")
@click.option("--role", type=ORG_ROLES, default="write", show_default=True)
@click.option("--team", "teams", multiple=True, metavar="TEAM:ROLE")
@json_option
def sso_invite(org_name: str, email: str, role: str, teams: tuple[str, ...]) -> None:
    """Invite EMAIL; accepted by signing in through the org's SSO with it."""
    places = [(name, _team_role(r)) for name, _, r in (t.partition(":") for t in teams)]
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        row = invitations.invite(
            db, rt, operator(), operator_principal(), org, email, OrgRole.parse(role), places
        )
        data = invitations.describe(db, rt, row)
    emit(data, lambda: _settings_text(data))


@sso.command("invitations")
@org_option
@json_option
def sso_invitations(org_name: str) -> None:
    """The org's pending invitations, each with its link and expiry."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        policy.require_admin(operator_principal(), org)
        data = invitations.describe_all(db, rt, invitations.list_for(db, org, rt.now()))
    emit(data, lambda: "\n".join(map(_invitation_text, data)))


def _invitation_text(item: dict[str, Any]) -> str:
    link = item["url"] or "(re-send it for a link)"
    return f"{item['email']} {item['role']} until {item['expires_at']}: {link}"


@sso.command("invite-resend")
@org_option
@click.argument("email")
@json_option
def sso_invite_resend(org_name: str, email: str) -> None:
    """Mail EMAIL's pending invitation again (its expiry renewed)."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        row = invitations.resend(db, rt, operator(), operator_principal(), org, email)
        data = invitations.describe(db, rt, row)
    emit(data, lambda: _settings_text(data))


@sso.command("invite-revoke")
@org_option
@click.argument("email")
@json_option
def sso_invite_revoke(org_name: str, email: str) -> None:
    """Revoke EMAIL's invitation; its link stops working."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        invitations.revoke(db, operator(), operator_principal(), org, email)
    emit({"revoked": email}, f"invitation of {email} revoked")


@sso.command("collaborator")
@org_option
@click.argument("email")
@click.option("--off", "off", is_flag=True, help="Take it back.")
@json_option
def sso_collaborator(org_name: str, email: str, off: bool) -> None:
    """Make a member outside the org's domains an external collaborator (no SSO)."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        user = user_by_email(db, email)
        members.set_collaborator(db, operator(), operator_principal(), org, user, not off)
    data = {"email": email, "external_collaborator": not off}
    emit(data, lambda: _settings_text(data))


@sso.command("end-sessions")
@org_option
@click.argument("email")
@json_option
def sso_end_sessions(org_name: str, email: str) -> None:
    """End a member's SSO authentications for the org now (and the sessions of an
    account the org manages)."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        ended = members.end_org_sessions(
            db, operator(), operator_principal(), org, user_by_email(db, email)
        )
    emit({"ended": ended}, f"{ended} ended")


@connection.command("activate")
@click.argument("connection_id", type=int)
@click.option("--skip-test", is_flag=True, help="Activate without a test sign-in (audited).")
@json_option
def connection_activate(connection_id: int, skip_test: bool) -> None:
    """Make a verified connection active (an operator may skip the test sign-in)."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = connections.get(db, connection_id)
        activation.activate(db, operator(), operator_principal(), row, skip_test=skip_test)
        data = connection_summary.describe(rt, row)
    emit(data, f"connection {connection_id}: active")


@connection.command("deactivate")
@click.argument("connection_id", type=int)
@json_option
def connection_deactivate(connection_id: int) -> None:
    """Switch a connection off."""
    rt = runtime()
    with rt.db.transaction() as db:
        row = connections.get(db, connection_id)
        activation.deactivate(db, operator(), operator_principal(), row)
        data = connection_summary.describe(rt, row)
    emit(data, f"connection {connection_id}: inactive")


@sso.command("setup-link")
@org_option
@click.option("--email", required=True, help="The IT admin the link is for.")
@click.option("--expires", metavar="DURATION", default="72h", show_default=True)
@json_option
def sso_setup_link(org_name: str, email: str, expires: str) -> None:
    """A one-time link to the setup portal for the org's IT admin (no account needed)."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        row, key = setup.create(
            db, rt, operator(), operator_principal(), org, email, parse_duration(expires)
        )
        data = {**setup.describe(row), "url": rt.url(f"/setup/{key}")}
    emit(data, data["url"])


@sso.command("setup-link-revoke")
@org_option
@click.argument("link_id", type=int)
@json_option
def sso_setup_link_revoke(org_name: str, link_id: int) -> None:
    """End a setup link now."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        setup.revoke(db, rt, operator(), operator_principal(), org, link_id)
    emit({"revoked": link_id}, f"setup link {link_id} revoked")
