"""``hubgate domain ...``: an org's email domains, for operators."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from hubgate.access import Principal
from hubgate.cli.base import emit, json_option, runtime, table
from hubgate.db.models import Org
from hubgate.operator import operator, operator_principal
from hubgate.orgs import service
from hubgate.sso import domains

__all__ = ["domain"]

org_option = click.option("--org", "org_name", required=True, metavar="NAME", help="The org.")


@click.group()
def domain() -> None:
    """An org's email domains; a domain counts once verified (DNS TXT or operator)."""


def _text(data: dict[str, Any]) -> str:
    record = data["txt_record"]
    state = f"verified ({data['verified_by']})" if data["verified"] else "not verified"
    return f'{data["domain"]}: {state}\nTXT record: {record["name"]} = "{record["value"]}"'


@domain.command("add")
@org_option
@click.argument("name", metavar="DOMAIN")
@json_option
def domain_add(org_name: str, name: str) -> None:
    """List DOMAIN for the org; prints the TXT record that verifies it."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        row = domains.add(db, rt, operator(), operator_principal(), org, name)
        data = domains.describe(row)
    emit(data, lambda: _text(data))


@domain.command("verify")
@org_option
@click.argument("name", metavar="DOMAIN")
@click.option("--dns", "by_dns", is_flag=True, help="Check the TXT record instead of vouching.")
@json_option
def domain_verify(org_name: str, name: str, by_dns: bool) -> None:
    """Mark DOMAIN verified as the operator, or with --dns look up its TXT record
    (at HUBGATE_DNS_RESOLVER, else the system resolver)."""
    rt = runtime()
    if by_dns:
        row = domains.verify_dns(rt, operator(), _operator_scope(org_name), name)
    else:
        with rt.db.transaction() as db:
            org = service.get_org(db, org_name)
            row = domains.verify_by_operator(db, rt, operator(), org, name)
    data = domains.describe(row)
    emit(data, lambda: _text(data))


def _operator_scope(org_name: str) -> domains.OrgScope:
    def scope(db: Session) -> tuple[Org, Principal]:
        org = service.get_org(db, org_name)
        return org, operator_principal()

    return scope


@domain.command("list")
@org_option
@json_option
def domain_list(org_name: str) -> None:
    """The org's domains, their state and their TXT records."""
    rt = runtime()
    with rt.db.transaction() as db:
        rows = [domains.describe(r) for r in domains.list_for(db, service.get_org(db, org_name))]
    emit(rows, lambda: table(
        [[r["domain"], r["verified_by"] or "-", r["txt_record"]["value"]] for r in rows],
        ["DOMAIN", "VERIFIED", "TXT VALUE"],
    ))  # fmt: skip


@domain.command("remove")
@org_option
@click.argument("name", metavar="DOMAIN")
@json_option
def domain_remove(org_name: str, name: str) -> None:
    """Remove DOMAIN from the org; a verified one becomes free for another org."""
    rt = runtime()
    with rt.db.transaction() as db:
        org = service.get_org(db, org_name)
        domains.remove(db, operator(), operator_principal(), org, name)
    emit({"org": org_name, "domain": name, "removed": True}, f"{name}: removed")
