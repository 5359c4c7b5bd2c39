"""The org admin's single sign-on page ``/{org}/sso``: mode, connections and setup
links, domains, defaults and timeout, role and team mappings with a preview,
invitations, the join link, external collaborators. Each form calls one service
function and comes back to the page, with the outcome or the refusal shown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from hubgate.access import OrgRole, TeamRole
from hubgate.accounts import users
from hubgate.accounts.emails import normalize_email
from hubgate.audit import Actor
from hubgate.db.models import Org, SsoConnection
from hubgate.errors import BadRequest, HubgateError
from hubgate.orgs import queries
from hubgate.principals import Credential
from hubgate.provisioning import mappings as scim_mappings
from hubgate.provisioning import tokens as scim_tokens
from hubgate.runtime import Runtime
from hubgate.sso import (
    activation,
    choice_warnings,
    connection_admin,
    connection_summary,
    connections,
    domains,
    health,
    invitations,
    mappings,
    members,
    metadata_changes,
    metadata_refresh,
    policy,
    setup,
)
from hubgate.web.context import Rt, actor_of
from hubgate.web.pages import sign_in_chart
from hubgate.web.pages.kit import SignedIn, org_context, org_scope, page_router, render, see_other
from hubgate.web.schemas import RowId
from hubgate.web.threads import on_network_thread, on_request_thread

__all__ = ["router"]

router = page_router()
Field = Annotated[str, Form(max_length=320)]
Lines = Annotated[str, Form(max_length=64 * 1024)]
MODES = tuple(policy.MODE_NAMES)
# What the page says after a change (``?done=KEY``): fixed sentences, as on the
# Members tab, so a crafted link cannot put words of its own on an admin's page.
DONE = {
    "settings": "Settings saved.",
    "enforcement": "Enforcement changed.",
    "renamed": "Connection renamed.",
    "deleted": "Connection deleted.",
    "metadata-refreshed": "Metadata refreshed.",
    "metadata-approve": "Metadata change approved.",
    "metadata-reject": "Metadata change rejected.",
    "connection-activated": "Connection activated.",
    "connection-deactivated": "Connection deactivated.",
    "setup-link": "Setup link created.",
    "setup-link-revoked": "Setup link revoked.",
    "domain-added": "Domain added: publish its TXT record.",
    "domain-verify": "Domain verified.",
    "domain-remove": "Domain removed.",
    "role-mappings": "Role mappings saved.",
    "team-mappings": "Team mappings saved.",
    "invited": "Invitation made: the mail is on its way.",
    "invitation-revoked": "Invitation revoked.",
    "join-rotated": "Join link rotated: the old one stopped.",
    "join-expiry": "Join link expiry set.",
    "join-disabled": "Join link disabled.",
    "collaborators": "Collaborators updated.",
    "scim-token": "SCIM token created.",
    "scim-token-revoked": "SCIM token revoked.",
}


def _page(
    request: Request, rt: Runtime, credential: Credential, org: str, status: int = 200, **extra: Any
) -> Response:
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
        context = org_context(found, principal, "sso") | _facts(db, rt, found)
        context["join_link"] = invitations.join_link(db, rt, principal, found)
    done = DONE.get(request.query_params.get("done", ""), "") if status == 200 else ""
    context |= {"modes": MODES, "done": done, **extra}
    return render(request, rt, "sso_settings.html", context, status)


def _facts(db: Session, rt: Runtime, org: Org) -> dict[str, Any]:
    rules = mappings.describe(db, org.id)
    return {
        "settings": policy.describe(db, org),
        "connections": [_connection(db, rt, c) for c in connections.of_org(db, org)],
        "connection_warnings": choice_warnings.warnings(db, org.id),
        "domains": [domains.describe(d) for d in domains.list_for(db, org)],
        "role_lines": "\n".join(
            f"{r['attribute']}={r['value']}:{r['role']}" for r in rules["role_mappings"]
        ),
        "team_lines": "\n".join(
            f"{r['attribute']}={r['value']}:{r['team']}:{r['team_role']}"
            for r in rules["team_mappings"]
        ),
        "teams": list(queries.team_names(db, org.id).values()),
        "invitations": invitations.describe_all(db, rt, invitations.list_for(db, org, rt.now())),
        "setup_links": [setup.describe(s) for s in setup.list_for(db, org, rt.now())],
        "collaborators": queries.collaborators(db, org),
        "scim_tokens": [scim_tokens.describe(t) for t in scim_tokens.list_for(db, org)],
        "scim_base": rt.url(f"/scim/v2/{org.name}"),
        "members": queries.members_of(db, org),
        "join_action": f"/{org.name}/sso/join-link",
        "health": _health(db, rt, org),
    }


def _health(db: Session, rt: Runtime, org: Org) -> dict[str, Any]:
    """Sign-in health: a chart per hour and per day, each connection's last sign-in
    and each SCIM token's last request."""
    shown = health.connections(db, org.id)
    names = {c.id: c.name for c in shown}
    periods: tuple[health.Period, ...] = ("hour", "day")
    charts = []
    for period in periods:
        span = health.window(period, rt.now())
        charts.append(sign_in_chart.chart(org.name, span, health.counts(db, org.id, span), names))
    return {"charts": charts, "connections": shown, "scim_tokens": health.scim_tokens(db, org.id)}


def _connection(db: Session, rt: Runtime, row: SsoConnection) -> dict[str, Any]:
    """A connection as the page shows it, with the SSO links its deletion would remove."""
    shown = connection_summary.describe(rt, row)
    shown["metadata"] = metadata_changes.status(db, rt, row)
    if row.state != "active":
        shown["links"] = connection_admin.links_of(db, row.id)
    return shown


@router.get("/{org}/sso")
def sso_page(org: str, request: Request, rt: Rt, credential: SignedIn) -> Response:
    return _page(request, rt, credential, org)


def _act(
    request: Request, rt: Runtime, credential: Credential, org: str, done: str, action: Any
) -> Response:
    """Run ``action(db, actor, principal, org)`` in one transaction and come back to
    the page; a refusal of the change is shown there, one of the caller is not."""

    def run(actor: Actor, scope: domains.OrgScope) -> Any:
        with rt.db.transaction() as db:
            found, principal = scope(db)
            return action(db, actor, principal, found)

    return _attempt(request, rt, credential, org, done, run)


def _attempt(
    request: Request,
    rt: Runtime,
    credential: Credential,
    org: str,
    done: str,
    run: Callable[[Actor, domains.OrgScope], Any],
) -> Response:
    """Check that the caller administers ``org``, then ``run(actor, scope)`` (which
    opens its own transactions, so it may look something up between them). ``done``
    is a key of :data:`DONE` (``""`` says nothing): a mistyped one fails here, in
    every test that drives its form, rather than leaving the page silent."""
    said = DONE[done] if done else ""
    with rt.db.transaction() as db:
        found, principal = org_scope(db, credential, org)
        policy.require_admin(principal, found)
    try:
        shown = run(actor_of(request, rt, credential), lambda db: org_scope(db, credential, org))
    except HubgateError as exc:
        return _page(request, rt, credential, org, exc.status, error=exc.message)
    if isinstance(shown, dict):
        return _page(request, rt, credential, org, done=said, **shown)
    return see_other(f"/{org}/sso?done={quote(done)}")


@router.post("/{org}/sso/mode")
def set_mode(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    mode: Annotated[str, Form(max_length=32)] = "",
    timeout_hours: Annotated[int, Form(ge=1, le=90 * 24)] = 168,
    default_role: Annotated[str, Form(max_length=16)] = "write",
    default_team: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        if policy.policy_of(db, found.id).name != mode:
            policy.set_mode(db, rt, actor, principal, found, mode)
        policy.update_defaults(
            db, rt, actor, principal, found, session_timeout=timedelta(hours=timeout_hours),
            default_role=_org_role(default_role), default_team=default_team or None,
        )  # fmt: skip

    return _act(request, rt, credential, org, "settings", action)


def _org_role(text: str) -> OrgRole:
    try:
        return OrgRole.parse(text)
    except KeyError:
        raise BadRequest("Choose a role.", code="invalid_role") from None


def _team_role(text: str) -> TeamRole:
    try:
        return TeamRole.parse(text)
    except KeyError:
        raise BadRequest(f"{text[:16]!r} is not a team role.", code="invalid_mapping") from None


@router.post("/{org}/sso/enforcement")
def set_enforcement(
    org: str, request: Request, rt: Rt, credential: SignedIn, enforced: Field = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        policy.set_enforcement(db, rt, actor, principal, found, enforced == "on")

    return _act(request, rt, credential, org, "enforcement", action)


# Registered before the route below, whose ``{state}`` would take these words too.
@router.post("/{org}/sso/connections/{connection_id}/rename")
def rename_connection(
    org: str,
    connection_id: RowId,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    name: Annotated[str, Form(max_length=connection_admin.MAX_NAME)] = "",
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        row = connections.get(db, connection_id, org_id=found.id)
        connection_admin.rename(db, actor, principal, row, name)

    return _act(request, rt, credential, org, "renamed", action)


@router.post("/{org}/sso/connections/{connection_id}/delete")
def delete_connection(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        row = connections.get(db, connection_id, org_id=found.id)
        connection_admin.delete(db, actor, principal, row)

    return _act(request, rt, credential, org, "deleted", action)


@router.post("/{org}/sso/connections/{connection_id}/metadata/refresh")
async def refresh_metadata(
    org: str, connection_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    """Read the metadata now, on a network thread (:mod:`hubgate.web.threads`)."""

    def run(actor: Actor, scope: domains.OrgScope) -> None:  # the fetch between transactions
        done = metadata_refresh.refresh(rt, actor, connection_id, scope=scope)
        if done.result == "failed":
            raise BadRequest(f"The metadata could not be refreshed ({done.reason}).")

    return await on_network_thread(
        _attempt, request, rt, credential, org, "metadata-refreshed", run
    )


@router.post("/{org}/sso/connections/{connection_id}/metadata/{verdict}")
def decide_metadata_change(
    org: str,
    connection_id: RowId,
    verdict: Literal["approve", "reject"],
    request: Request,
    rt: Rt,
    credential: SignedIn,
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        row = connections.get(db, connection_id, org_id=found.id)
        decide = metadata_changes.approve if verdict == "approve" else metadata_changes.reject
        decide(db, actor, principal, row)

    return _act(request, rt, credential, org, f"metadata-{verdict}", action)


@router.post("/{org}/sso/connections/{connection_id}/{state}")
def set_connection_state(
    org: str,
    connection_id: RowId,
    state: Literal["activate", "deactivate"],
    request: Request,
    rt: Rt,
    credential: SignedIn,
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        row = connections.get(db, connection_id, org_id=found.id)
        if state == "activate":
            activation.activate(db, actor, principal, row)
        else:
            activation.deactivate(db, actor, principal, row)

    return _act(request, rt, credential, org, f"connection-{state}d", action)


@router.post("/{org}/sso/setup-links")
def create_setup_link(
    org: str, request: Request, rt: Rt, credential: SignedIn, email: Field = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> dict[str, Any]:
        _row, key = setup.create(db, rt, actor, principal, found, email)
        return {"new_setup_url": rt.url(f"/setup/{key}")}

    return _act(request, rt, credential, org, "setup-link", action)


@router.post("/{org}/sso/setup-links/{link_id}/revoke")
def revoke_setup_link(
    org: str, link_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        setup.revoke(db, rt, actor, principal, found, link_id)

    return _act(request, rt, credential, org, "setup-link-revoked", action)


@router.post("/{org}/sso/domains")
def add_domain(
    org: str, request: Request, rt: Rt, credential: SignedIn, domain: Field = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        domains.add(db, rt, actor, principal, found, domain)

    return _act(request, rt, credential, org, "domain-added", action)


@router.post("/{org}/sso/domains/{domain}/{verb}")
async def domain_action(
    org: str,
    domain: str,
    verb: Literal["verify", "remove"],
    request: Request,
    rt: Rt,
    credential: SignedIn,
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        domains.remove(db, actor, principal, found, domain[:253])

    def verify(actor: Actor, scope: domains.OrgScope) -> None:  # the lookup between transactions
        domains.verify_dns(rt, actor, scope, domain[:253])

    done = f"domain-{verb}"
    if verb == "verify":  # the DNS lookup, on a network thread (hubgate.web.threads)
        return await on_network_thread(_attempt, request, rt, credential, org, done, verify)
    return await on_request_thread(_act, request, rt, credential, org, done, action)


def _parse(lines: str, parts: int) -> list[list[str]]:
    """``attribute=value:role`` (or ``attribute=value:team:role``), one per line."""
    rules = []
    for number, line in enumerate(lines.splitlines()[: mappings.MAX_RULES + 1], 1):
        if not line.strip():
            continue
        attribute, _, rest = line.strip().partition("=")
        pieces = rest.rsplit(":", parts - 2)
        if not attribute or len(pieces) != parts - 1 or not all(p.strip() for p in pieces):
            raise BadRequest(f"Line {number} is not attribute=value:{'team:' * (parts - 3)}role.")
        rules.append([attribute.strip(), *(p.strip() for p in pieces)])
    return rules


@router.post("/{org}/sso/role-mappings")
def set_role_mappings(
    org: str, request: Request, rt: Rt, credential: SignedIn, lines: Lines = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        rules = [mappings.RoleRule(a, v, _org_role(r)) for a, v, r in _parse(lines, 3)]
        scim_mappings.set_role_mappings(db, actor, principal, found, rules)

    return _act(request, rt, credential, org, "role-mappings", action)


@router.post("/{org}/sso/team-mappings")
def set_team_mappings(
    org: str, request: Request, rt: Rt, credential: SignedIn, lines: Lines = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        rules = [(a, v, t, _team_role(r)) for a, v, t, r in _parse(lines, 4)]
        mappings.set_team_mappings(db, actor, principal, found, rules)

    return _act(request, rt, credential, org, "team-mappings", action)


@router.post("/{org}/sso/preview")
def preview(
    org: str, request: Request, rt: Rt, credential: SignedIn, groups: Lines = ""
) -> Response:
    names = [g.strip() for g in groups.replace("\n", ",").split(",") if g.strip()][:1000]

    def action(db: Session, actor: Any, principal: Any, found: Org) -> dict[str, Any]:
        found_preview = mappings.preview(db, found.id, names, {}, pins=True)
        return {"preview": found_preview, "preview_groups": names}

    return _act(request, rt, credential, org, "", action)


@router.post("/{org}/sso/invitations")
def invite(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    email: Field = "",
    role: Annotated[str, Form(max_length=16)] = "write",
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        invitations.invite(db, rt, actor, principal, found, email, _org_role(role))

    return _act(request, rt, credential, org, "invited", action)


@router.post("/{org}/sso/invitations/revoke")
def revoke_invitation(
    org: str, request: Request, rt: Rt, credential: SignedIn, email: Field = ""
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        invitations.revoke(db, actor, principal, found, email)

    return _act(request, rt, credential, org, "invitation-revoked", action)


@router.post("/{org}/sso/join-link")
def rotate_join_link(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    expires_days: Annotated[int, Form(ge=0, le=365)] = 0,
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        invitations.rotate_join_link(db, rt, actor, principal, found, _days(expires_days))

    return _act(request, rt, credential, org, "join-rotated", action)


def _days(days: int) -> timedelta | None:
    return timedelta(days=days) if days else None


@router.post("/{org}/sso/join-link/expiry")
def set_join_link_expiry(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    expires_days: Annotated[int, Form(ge=0, le=365)] = 0,
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        invitations.set_join_link_expiry(db, rt, actor, principal, found, _days(expires_days))

    return _act(request, rt, credential, org, "join-expiry", action)


@router.post("/{org}/sso/join-link/disable")
def disable_join_link(org: str, request: Request, rt: Rt, credential: SignedIn) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        invitations.disable_join_link(db, actor, principal, found)

    return _act(request, rt, credential, org, "join-disabled", action)


@router.post("/{org}/sso/collaborators")
def set_collaborator(
    org: str,
    request: Request,
    rt: Rt,
    credential: SignedIn,
    email: Field = "",
    external: Field = "on",
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        user = users.find_by_email(db, normalize_email(email))
        if user is None:
            raise BadRequest("No account has that email.", code="unknown_email")
        members.set_collaborator(db, actor, principal, found, user, external == "on")

    return _act(request, rt, credential, org, "collaborators", action)


@router.post("/{org}/sso/scim-tokens")
def create_scim_token(
    org: str, request: Request, rt: Rt, credential: SignedIn, name: Field = "SCIM"
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> dict[str, Any]:
        _row, secret = scim_tokens.create(db, actor, principal, found, name)
        return {"new_scim_token": secret}

    return _act(request, rt, credential, org, "scim-token", action)


@router.post("/{org}/sso/scim-tokens/{token_id}/revoke")
def revoke_scim_token(
    org: str, token_id: RowId, request: Request, rt: Rt, credential: SignedIn
) -> Response:
    def action(db: Session, actor: Any, principal: Any, found: Org) -> None:
        scim_tokens.revoke(db, actor, principal, found, token_id, rt.now())

    return _act(request, rt, credential, org, "scim-token-revoked", action)
