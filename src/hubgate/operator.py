"""What the operator (the ``hubgate`` command, ``hubgate demo``, jobs) acts as.

The operator stands outside every org: its audit label is ``operator:cli`` and,
for the service functions that ask :func:`hubgate.access.decide`, it is the
explicit operator principal (:meth:`hubgate.access.Principal.operator`). Nothing
here re-implements a rule; it only names the operator and finds what a command
line refers to.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from hubgate import audit
from hubgate.access import Principal
from hubgate.accounts import users
from hubgate.accounts.emails import normalize_email
from hubgate.accounts.tokens import revoke
from hubgate.audit import Actor
from hubgate.db.models import Token, User
from hubgate.errors import NotFound

if TYPE_CHECKING:
    from hubgate.runtime import Runtime

__all__ = [
    "OPERATOR_LABEL",
    "create_account",
    "operator",
    "operator_principal",
    "revoke_token",
    "user_by_email",
]

OPERATOR_LABEL = "operator:cli"


def operator() -> Actor:
    """A fresh operator actor (each command gets its own trace id)."""
    return Actor.system(OPERATOR_LABEL)


def operator_principal() -> Principal:
    """The operator as :func:`hubgate.access.decide` sees it: every org in reach."""
    return Principal.operator()


def user_by_email(db: Session, address: str) -> User:
    user = users.find_by_email(db, normalize_email(address))
    if user is None:
        raise NotFound(f"No account with the email {address}.")
    return user


def create_account(
    db: Session,
    rt: Runtime,
    actor: Actor,
    address: str,
    *,
    password: str | None,
    display_name: str | None,
    verified: bool,
) -> User:
    """An account the operator creates; unless the operator vouches for the email,
    the person gets the usual verification mail."""
    user = users.create_user(
        db, rt, address, password=password, display_name=display_name, verified=verified
    )
    if not verified:
        users.send_verification(db, rt, user.emails[0])
    audit.record(
        db, actor, "user.created", target=user.emails[0].address,
        data={"verified": verified, "password": password is not None},
    )  # fmt: skip
    return user


def revoke_token(db: Session, actor: Actor, token_id: int, now: datetime) -> Token:
    """Revoke any token by id (personal or team); audited the first time only."""
    row = db.get(Token, token_id)
    if row is None:
        raise NotFound("No such token.")
    if revoke(db, row, now):
        audit.record(
            db, actor, "token.revoked", org_id=row.org_id, target=f"token:{row.id}",
            data={"kind": row.kind},
        )  # fmt: skip
    return row
