"""An org's email domains (DESIGN.md §1 "Policy", issue 5 item 1).

A domain counts once verified: by a DNS TXT record ``hubgate-verification=<token>``
at ``_hubgate.<domain>``, or by an operator. A domain verified by one org cannot
be claimed by another; the partial unique index ``uq_org_domains_verified`` holds
that even when two orgs verify at the same moment. Domains are compared after
:func:`hubgate.accounts.emails.normalize_domain` (IDNA, lowercase, no trailing dot);
one is added and verified only if :func:`hubgate.accounts.emails.accepted_domain`
takes it (a special-use name such as ``acme.test`` only in development), the rule
that decides every address hubgate keeps.

Every function runs inside the caller's transaction and never commits; a refusal
raises before anything changes. The exception is :func:`verify_dns`, which owns
its transactions so that the DNS lookup runs while none is open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from itertools import islice
from typing import Any

import dns.exception
import dns.resolver
from dns.rdtypes.txtbase import TXTBase
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Action, OrgTarget, Principal
from hubgate.accounts.emails import accepted_domain, normalize_domain
from hubgate.audit import Actor
from hubgate.config import Environment
from hubgate.db.models import Org, OrgDomain, SsoConnection
from hubgate.errors import BadRequest, Conflict, NotFound
from hubgate.principals import OrgScope, require
from hubgate.runtime import Runtime
from hubgate.store import new_key

__all__ = [
    "MAX_DOMAINS_PER_ORG",
    "DomainVerification",
    "OrgScope",
    "TxtLookup",
    "add",
    "assign_connection",
    "confirm_dns",
    "describe",
    "dns_lookup",
    "list_for",
    "record_name",
    "record_value",
    "remove",
    "verified_owner",
    "verify_by_operator",
    "verify_dns",
]

MAX_DOMAINS_PER_ORG = 50
_MAX_INPUT = 1024
_MAX_RECORDS = 32
_DNS_TIMEOUT_SECONDS = 2.0  # per server attempt
_DNS_LIFETIME_SECONDS = 4.0  # the whole lookup, retries included


class DomainVerification(StrEnum):
    """How a domain was verified (``OrgDomain.verified_by``): its TXT record
    found in DNS, or an operator vouching for it from the CLI."""

    DNS = "dns"
    OPERATOR = "operator"


TxtLookup = Callable[[str], list[bytes]]
"""A DNS name -> its TXT records (each record's strings joined); raises
:class:`~hubgate.errors.BadRequest` ``domain_unverified`` when the lookup fails."""


# -- names and rows ------------------------------------------------------------


def record_name(domain: str) -> str:
    """Where the org publishes its TXT record."""
    return f"_hubgate.{domain}"


def record_value(row: OrgDomain) -> str:
    return f"hubgate-verification={row.verification_token}"


def _normalized(domain: str, env: Environment | None = None) -> str:
    """``domain`` normalized, for a lookup; with ``env``, only one hubgate takes in
    there (:func:`accepted_domain`)."""
    try:
        if len(domain) > _MAX_INPUT:
            raise BadRequest("it is too long")
        return normalize_domain(domain) if env is None else accepted_domain(domain, env)
    except BadRequest as exc:
        reason = exc.message.rpartition(": ")[2].rstrip(".")
        message = f"That domain name is not valid: {reason}."
        raise BadRequest(message, code="invalid_domain") from exc


def _find(db: Session, org_id: int, name: str) -> OrgDomain | None:
    return db.scalars(
        select(OrgDomain).where(OrgDomain.org_id == org_id, OrgDomain.domain == name)
    ).first()


def _row(db: Session, org: Org, domain: str) -> OrgDomain:
    row = _find(db, org.id, _normalized(domain))
    if row is None:
        raise NotFound("This organization has not added that domain.")
    return row


def _claimed() -> Conflict:
    return Conflict("That domain is verified by another organization.", code="domain_claimed")


def _refuse_claimed(db: Session, org_id: int, name: str) -> None:
    owner = verified_owner(db, name)
    if owner is not None and owner.org_id != org_id:
        raise _claimed()


def _unverified(message: str) -> BadRequest:
    return BadRequest(message, code="domain_unverified")


# -- lookups -------------------------------------------------------------------


def verified_owner(db: Session, domain: str) -> OrgDomain | None:
    """The row of the org that verified ``domain``, if any (one at most)."""
    return db.scalars(
        select(OrgDomain).where(
            OrgDomain.domain == _normalized(domain), OrgDomain.verified_at.is_not(None)
        )
    ).first()


def list_for(db: Session, org: Org) -> list[OrgDomain]:
    return list(
        db.scalars(select(OrgDomain).where(OrgDomain.org_id == org.id).order_by(OrgDomain.domain))
    )


def describe(row: OrgDomain) -> dict[str, Any]:
    """What an admin sees: the state and the TXT record to publish."""
    return {
        "domain": row.domain,
        "verified": row.verified_at is not None,
        "verified_at": row.verified_at.isoformat() if row.verified_at else None,
        "verified_by": row.verified_by,
        "connection_id": row.connection_id,
        "txt_record": {"name": record_name(row.domain), "value": record_value(row)},
    }


# -- changes -------------------------------------------------------------------


def _check_room(db: Session, org_id: int) -> None:
    count = db.scalar(select(func.count()).where(OrgDomain.org_id == org_id)) or 0
    if count >= MAX_DOMAINS_PER_ORG:
        message = f"An organization can list at most {MAX_DOMAINS_PER_ORG} domains."
        raise Conflict(message, code="too_many_domains")


def add(
    db: Session, rt: Runtime, actor: Actor, principal: Principal, org: Org, domain: str
) -> OrgDomain:
    """List ``domain`` for ``org`` (unverified, with a fresh token); the same org
    adding it again gets the row it has."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    name = _normalized(domain, rt.settings.env)
    existing = _find(db, org.id, name)
    if existing is not None:
        return existing
    _refuse_claimed(db, org.id, name)
    _check_room(db, org.id)
    row = OrgDomain(org_id=org.id, domain=name, verification_token=new_key())
    db.add(row)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict("That domain was added at the same moment; try again.") from exc
    audit.record(db, actor, "domain.added", org_id=org.id, target=name)
    return row


def _mark_verified(
    db: Session, actor: Actor, row: OrgDomain, how: DomainVerification, now: datetime
) -> OrgDomain:
    row.verified_at, row.verified_by = now, how.value
    try:
        db.flush()
    except IntegrityError as exc:  # another org verified it first (the partial index)
        raise _claimed() from exc
    audit.record(
        db, actor, "domain.verified", org_id=row.org_id, target=row.domain, data={"how": how}
    )
    return row


def verify_dns(
    rt: Runtime, actor: Actor, scope: OrgScope, domain: str, *, lookup: TxtLookup | None = None
) -> OrgDomain:
    """Verify by the TXT record at ``_hubgate.<domain>``: checked in one short
    transaction, looked up while none is open (at ``HUBGATE_DNS_RESOLVER``, else the
    system's resolver, unless ``lookup`` is given), then stored by :func:`confirm_dns`
    in a transaction of its own."""
    with rt.db.transaction() as db:
        row = _awaiting_dns(db, rt, *scope(db), domain)
    if row.verified_at is not None:
        return row
    found = (lookup or dns_lookup(rt.settings.dns_resolver_address))(record_name(row.domain))
    with rt.db.transaction() as db:
        return confirm_dns(db, rt, actor, *scope(db), domain, found)


def confirm_dns(
    db: Session,
    rt: Runtime,
    actor: Actor,
    org: Org,
    principal: Principal,
    domain: str,
    found: list[bytes],
) -> OrgDomain:
    """Verify ``domain`` if ``found`` (the TXT records looked up at its
    :func:`record_name` before this transaction) holds its token; every check of
    :func:`verify_dns` is made again, as the rows may have changed meanwhile."""
    row = _awaiting_dns(db, rt, org, principal, domain)
    if row.verified_at is not None:
        return row
    if record_value(row).encode() not in found:
        raise _unverified(
            f"No TXT record at {record_name(row.domain)} is {record_value(row)!r} yet; "
            "publish it and try again (DNS changes may take a while to appear)."
        )
    return _mark_verified(db, actor, row, DomainVerification.DNS, rt.now())


def _awaiting_dns(
    db: Session, rt: Runtime, org: Org, principal: Principal, domain: str
) -> OrgDomain:
    """The org's row for ``domain``; unless already verified, none other may hold it."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = _row(db, org, domain)
    if row.verified_at is None:
        _refuse_unaccepted(rt, row)
        _refuse_claimed(db, org.id, row.domain)
    return row


def _refuse_unaccepted(rt: Runtime, row: OrgDomain) -> None:
    """A domain listed while the instance took it (a special-use name in development)
    is verified only if this instance takes it too."""
    _normalized(row.domain, rt.settings.env)


def verify_by_operator(db: Session, rt: Runtime, actor: Actor, org: Org, domain: str) -> OrgDomain:
    """An operator vouches for the domain (the CLI); no DNS check, no principal."""
    row = _row(db, org, domain)
    if row.verified_at is not None:
        return row
    _refuse_unaccepted(rt, row)
    _refuse_claimed(db, org.id, row.domain)
    return _mark_verified(db, actor, row, DomainVerification.OPERATOR, rt.now())


def remove(db: Session, actor: Actor, principal: Principal, org: Org, domain: str) -> None:
    """Drop the domain; a verified one becomes free for any org to verify."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = _row(db, org, domain)
    db.delete(row)
    db.flush()
    audit.record(
        db, actor, "domain.removed", org_id=org.id, target=row.domain,
        data={"was_verified": row.verified_at is not None},
    )  # fmt: skip


def assign_connection(
    db: Session,
    actor: Actor,
    principal: Principal,
    org: Org,
    domain: str,
    connection_id: int | None,
) -> OrgDomain:
    """Make a connection of ``org`` own the domain (``None``: no connection).
    One column per row, so a domain has at most one connection."""
    require(principal, Action.ADMIN, OrgTarget(org.id))
    row = _row(db, org, domain)
    if connection_id is not None:
        connection = db.get(SsoConnection, connection_id)
        if connection is None or connection.org_id != org.id:
            raise NotFound("No such SSO connection in this organization.")
    old, row.connection_id = row.connection_id, connection_id
    db.flush()
    audit.record(
        db, actor, "domain.connection_set", org_id=org.id, target=row.domain,
        data={"from": old, "to": connection_id},
    )  # fmt: skip
    return row


# -- DNS -----------------------------------------------------------------------


def _resolver(address: tuple[str, int] | None) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=address is None)
    if address is not None:
        resolver.nameservers, resolver.port = [address[0]], address[1]
    resolver.timeout, resolver.lifetime = _DNS_TIMEOUT_SECONDS, _DNS_LIFETIME_SECONDS
    resolver.cache = None
    return resolver


def _txt_records(address: tuple[str, int] | None, name: str) -> list[bytes]:
    answer = _resolver(address).resolve(f"{name}.", "TXT", search=False)
    records = (r for r in answer if isinstance(r, TXTBase))
    return [b"".join(r.strings) for r in islice(records, _MAX_RECORDS)]


def dns_lookup(address: tuple[str, int] | None) -> TxtLookup:
    """TXT lookups against ``address`` (IP, port), or the system resolver for ``None``;
    bounded in time (a few seconds) and in the records read."""

    def lookup(name: str) -> list[bytes]:
        try:
            return _txt_records(address, name)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            raise _unverified(f"There is no TXT record at {name} yet.") from exc
        except dns.exception.Timeout as exc:
            raise _unverified(f"The DNS lookup of {name} timed out; try again.") from exc
        except dns.resolver.NoNameservers as exc:
            message = f"The DNS servers failed to answer for {name} (SERVFAIL or REFUSED)."
            raise _unverified(message) from exc
        except (dns.exception.DNSException, OSError) as exc:
            raise _unverified(f"The DNS lookup of {name} failed: {type(exc).__name__}.") from exc

    return lookup
