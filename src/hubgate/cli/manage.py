"""``hubgate user|org|member|team|resource``: the operator's account and org commands.

Each command is one transaction calling the org and account services as the
operator (:mod:`hubgate.operator`); the services keep every rule.
"""

from __future__ import annotations

import click
from sqlalchemy import func, select

from hubgate.access import OrgRole, ResourceKind, TeamRole, Visibility
from hubgate.account_security import recovery
from hubgate.account_security.refusals import Refused
from hubgate.accounts import users
from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.db.models import Membership, Org
from hubgate.operator import create_account, operator, operator_principal, user_by_email
from hubgate.orgs import queries, resources, service

__all__ = ["member", "org", "resource", "team", "user"]

ORG_ROLES = click.Choice([r.label for r in OrgRole])
TEAM_ROLES = click.Choice([r.label for r in TeamRole])
KINDS = click.Choice([k.value for k in ResourceKind])
org_option = click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")


def _read_password() -> str:
    """One line from stdin without its line ending (``--password-stdin``); on a
    terminal, a hidden prompt asked twice."""
    stdin = click.get_text_stream("stdin")
    if stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))
    return stdin.readline().rstrip("\r\n")


# -- user --------------------------------------------------------------------


@click.group()
def user() -> None:
    """Accounts."""


@user.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@click.option("--name", help="Display name (default: the part of the email before @).")
@click.option(
    "--verified/--unverified", default=True, show_default=True,
    help="Mark the email verified (the operator vouches) or send a verification mail.",
)  # fmt: skip
@json_option
def user_create(email: str, password_stdin: bool, name: str | None, verified: bool) -> None:
    """Create an account with EMAIL as its primary email; prints the user id."""
    password = _read_password() if password_stdin else None
    rt = runtime()
    with rt.db.transaction() as db:
        created = create_account(
            db, rt, operator(), email, password=password, display_name=name, verified=verified
        )
        data = {"id": created.id, "email": created.emails[0].address, "verified": verified}
    emit(data, str(data["id"]))


@user.command("purge-unverified")
@click.option(
    "--days", type=click.IntRange(1, 365), default=None,
    help="Age after which an unverified account goes (default: HUBGATE_UNVERIFIED_ACCOUNT_DAYS).",
)  # fmt: skip
@json_option
def user_purge_unverified(days: int | None) -> None:
    """Delete accounts whose primary email is still unverified, freeing their addresses."""
    rt = runtime()
    with rt.db.transaction() as db:
        age = days or rt.settings.unverified_account_days
        purged = users.purge_unverified(db, operator(), rt.now(), age)
    emit({"purged": purged, "days": age}, f"{purged} unverified account(s) deleted")


@user.command("reset-link")
@click.argument("email")
@click.option(
    "--force", is_flag=True,
    help="Make the link even where an org in managed mode signs the account in "
    "(break-glass while its IdP is down; audited as forced).",
)  # fmt: skip
@json_option
def user_reset_link(email: str, force: bool) -> None:
    """Print a one-time link that lets EMAIL's account choose a new password
    (valid HUBGATE_PASSWORD_RESET_SECONDS; setting the password ends its sessions)."""
    rt = runtime()
    with rt.db.transaction() as db:
        outcome = recovery.operator_link(db, rt, operator(), email, force=force)
    if isinstance(outcome, Refused):
        raise outcome.error
    data = {"link": outcome, "expires_in_seconds": rt.settings.password_reset_seconds}
    emit(data, outcome)


# -- org ---------------------------------------------------------------------


@click.group()
def org() -> None:
    """Organizations."""


@org.command("create")
@click.argument("name")
@click.option("--admin", "admin_email", required=True, metavar="EMAIL", help="The first admin.")
@click.option("--display-name", help="Display name (default: NAME).")
@json_option
def org_create(name: str, admin_email: str, display_name: str | None) -> None:
    """Create the organization NAME with an existing account as its first admin."""
    rt = runtime()
    with rt.db.transaction() as db:
        admin = user_by_email(db, admin_email)
        created = service.create_org(db, operator(), name, display_name, admin)
        data = _org_json(created, 1) | {"admin": admin.emails[0].address}
    emit(data, f"created org {created.name} (id {created.id})")


def _org_json(found: Org, members: int) -> dict[str, object]:
    return {
        "id": found.id,
        "name": found.name,
        "display_name": found.display_name,
        "members": members,
        "created_at": found.created_at,
    }


@org.command("list")
@json_option
def org_list() -> None:
    """List every organization with its member count."""
    counts = (
        select(Org, func.count(Membership.id))
        .outerjoin(Membership, Membership.org_id == Org.id)
        .group_by(Org.id)
        .order_by(Org.name)
    )
    with runtime().db.transaction() as db:
        data = [_org_json(found, count) for found, count in db.execute(counts)]
    rows = [[str(o["name"]), str(o["display_name"]), str(o["members"])] for o in data]
    emit(data, table(rows, ["NAME", "DISPLAY NAME", "MEMBERS"]))


# -- member ------------------------------------------------------------------


@click.group()
def member() -> None:
    """Org members and their roles."""


@member.command("list")
@org_option
@json_option
def member_list(org_name: str) -> None:
    """List the org's members with their role, where it comes from, and teams."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        rows = queries.members_of(db, found)
        gap = queries.admin_gap(db, found.id)
    data = [
        {"user_id": r.user_id, "email": r.email, "display_name": r.display_name,
         "role": r.role, "role_source": r.role_source, "role_detail": r.role_detail,
         "role_pinned": r.role_pinned, "role_origin": r.role_origin, "active": r.active,
         "teams": r.teams, "sign_in": r.sign_in, "sso_connections": list(r.connections),
         "has_password": r.has_password, "external_collaborator": r.external_collaborator,
         "scim_managed": r.scim_managed}
        for r in rows
    ]  # fmt: skip
    if gap is not None:
        click.echo(_gap_warning(found.name, gap), err=True)
    lines = [[r.email, r.role + ("" if r.active else " (deactivated)"), _teams(r.teams),
              r.role_origin, r.sign_in] for r in rows]  # fmt: skip
    emit(data, table(lines, ["EMAIL", "ROLE", "TEAMS", "SOURCE", "SIGN-IN"]))


def _gap_warning(org_name: str, gap: queries.AdminGap) -> str:
    when = f" by SCIM on {gap.at:%Y-%m-%d %H:%M} UTC" if gap.at else ""
    return (
        f"warning: {org_name} has no active admin (the last one was deprovisioned{when}); "
        f"restore one with: hubgate member set-role --org {org_name} EMAIL --role admin"
    )


def _teams(teams: dict[str, str]) -> str:
    return ", ".join(f"{name}:{role}" for name, role in sorted(teams.items())) or "-"


@member.command("add")
@org_option
@click.argument("email")
@click.option("--role", type=ORG_ROLES, default="write", show_default=True, help="Org role.")
@json_option
def member_add(org_name: str, email: str, role: str) -> None:
    """Make the account with EMAIL a member of the org."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        person = user_by_email(db, email)
        parsed = OrgRole.parse(role)
        service.add_member(db, operator(), operator_principal(), found, person, parsed)
        data = {"org": found.name, "email": person.emails[0].address, "role": role}
    emit(data, f"{data['email']} is now {role} in {data['org']}")


@member.command("set-role")
@org_option
@click.argument("email")
@click.option("--role", type=ORG_ROLES, required=True, help="The new org role.")
@click.option("--pin", is_flag=True, help="Pin it: role mappings leave it until unpinned.")
@json_option
def member_set_role(org_name: str, email: str, role: str, pin: bool) -> None:
    """Change a member's org role (an org always keeps one active admin).

    Restores an admin to an org SCIM left without one. A role a mapping gives
    changes only with --pin. A member SCIM deactivated is refused: their identity
    provider reactivates them."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        person = user_by_email(db, email)
        parsed = OrgRole.parse(role)
        row = service.set_role(db, operator(), operator_principal(), found, person, parsed, pin=pin)
        data = {
            "org": found.name, "email": person.emails[0].address, "role": role,
            "pinned": row.role_pinned,
        }  # fmt: skip
    pinned = " (pinned)" if data["pinned"] else ""
    emit(data, f"{data['email']} is now {role}{pinned} in {data['org']}")


@member.command("unpin")
@org_option
@click.argument("email")
@json_option
def member_unpin(org_name: str, email: str) -> None:
    """Unpin a member's role: the role mappings decide it again from their next
    sign-in or SCIM group change."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        person = user_by_email(db, email)
        row = service.unpin(db, operator(), operator_principal(), found, person)
        data = {"org": found.name, "email": person.emails[0].address, "role": row.role,
                "pinned": False}  # fmt: skip
    emit(data, f"{data['email']}'s role in {data['org']} is no longer pinned")


@member.command("remove")
@org_option
@click.argument("email")
@json_option
def member_remove(org_name: str, email: str) -> None:
    """Remove a member from the org and its teams (never the last admin)."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        person = user_by_email(db, email)
        service.remove_member(db, operator(), operator_principal(), found, person)
        data = {"org": found.name, "email": person.emails[0].address, "removed": True}
    emit(data, f"{data['email']} was removed from {data['org']}")


# -- team --------------------------------------------------------------------


@click.group()
def team() -> None:
    """Teams (resource groups) of an org."""


@team.command("create")
@org_option
@click.argument("name")
@click.option("--display-name", help="Display name (default: NAME).")
@json_option
def team_create(org_name: str, name: str, display_name: str | None) -> None:
    """Create the team NAME in the org."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        created = service.create_team(
            db, operator(), operator_principal(), found, name, display_name
        )
        data = {"id": created.id, "org": found.name, "name": created.name}
    emit(data, f"created team {data['org']}/{data['name']} (id {data['id']})")


@team.command("add-member")
@org_option
@click.argument("name")
@click.argument("email")
@click.option("--role", type=TEAM_ROLES, required=True, help="Team role.")
@json_option
def team_add_member(org_name: str, name: str, email: str, role: str) -> None:
    """Add an org member to the team NAME, or change their team role."""
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        found_team = service.get_team(db, found, name)
        person = user_by_email(db, email)
        service.set_team_member(
            db, operator(), operator_principal(), found, found_team, person,
            TeamRole.parse(role),
        )  # fmt: skip
        data = {"org": found.name, "team": name, "email": person.emails[0].address, "role": role}
    emit(data, f"{data['email']} is now {role} in team {data['org']}/{name}")


# -- resource ----------------------------------------------------------------


@click.group()
def resource() -> None:
    """Models, datasets, Spaces and deployments."""


@resource.command("create")
@org_option
@click.argument("kind", type=KINDS)
@click.argument("name")
@click.option("--public/--private", default=False, show_default=True, help="Visibility.")
@click.option("--team", "team_name", metavar="TEAM", help="Put the resource in this team.")
@click.option("--description", default="", help="A short description.")
@json_option
def resource_create(
    org_name: str, kind: str, name: str, public: bool, team_name: str | None, description: str
) -> None:
    """Create a resource KIND NAME in the org (no creator: the operator made it)."""
    visibility = Visibility.PUBLIC if public else Visibility.PRIVATE
    with runtime().db.transaction() as db:
        found = service.get_org(db, org_name)
        created = resources.create(
            db, operator(), operator_principal(), found, ResourceKind(kind), name,
            visibility, team_name, description,
        )  # fmt: skip
        data = {
            "id": created.id, "org": found.name, "kind": kind, "name": created.name,
            "visibility": visibility.value, "team": team_name,
        }  # fmt: skip
    emit(data, f"created {visibility.value} {kind} {found.name}/{name} (id {data['id']})")
