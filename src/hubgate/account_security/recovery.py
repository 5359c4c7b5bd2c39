"""Password reset by mail, the operator's reset link, and changing a password.

A reset link is a one-time key in the shared store (kept hashed, DESIGN.md §5),
bound to the account and to the verified email row it was mailed to, valid for
``password_reset_seconds``. Asking for one answers the same whether or not the
address has an account; requests are counted per address and per client address.
Setting a new password ends every session of the account and mails a notice; the
person then signs in afresh (nobody is signed in by a link).

In managed mode an org signs its people in through its IdP, so no reset link is
made for an address in its verified domains (the page says so and offers SSO)
nor for an account it counts as its own (the answer stays neutral, so it tells
nobody whose account that is).

Functions run in the caller's transaction and never commit. A refusal is
returned as :class:`~hubgate.account_security.refusals.Refused` after its audit record
is written: the caller commits, then raises or shows ``error``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.account_security.refusals import Refused, refuse
from hubgate.accounts import sessions, throttle
from hubgate.accounts.emails import normalize_email
from hubgate.accounts.passwords import PasswordPolicy
from hubgate.audit import Actor
from hubgate.db.models import Email, User
from hubgate.errors import BadRequest, Forbidden, HubgateError, TooManyRequests
from hubgate.runtime import Runtime
from hubgate.sso.enforcement import sso_enforced

__all__ = [
    "NEUTRAL",
    "RESET_PURPOSE",
    "Refused",
    "change_password",
    "check_link",
    "confirm_reset",
    "operator_link",
    "request_reset",
]

RESET_PURPOSE = "password_reset"
NEUTRAL = (
    "If that address belongs to an account and is verified, a link to choose a new "
    "password is on its way. It works once, for a limited time."
)
PER_ADDRESS = 5
"""Reset requests for one email address in a throttle window."""
PER_CLIENT = 20
"""Reset requests from one client address in a throttle window."""
_SCOPE = "reset-"
REFUSED = "user.password_reset_refused"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


def link_invalid() -> BadRequest:
    return BadRequest(
        "This password reset link is not valid, was already used or has expired. "
        "Ask for a new one.",
        code="reset_link_invalid",
    )


# -- asking for a link ------------------------------------------------------------


def request_reset(db: Session, rt: Runtime, actor: Actor, address: str) -> Refused | None:
    """Mail a reset link when ``address`` is a verified email of an account.

    ``None`` means: answer :data:`NEUTRAL`, whatever happened."""
    checked = _admissible(db, rt, actor, address)
    if isinstance(checked, HubgateError):
        return refuse(db, actor, REFUSED, _printable(address), checked)
    email = _verified_email(db, checked)
    if email is not None and sso_enforced(db, checked, email.user) is not None:
        # Neutral on purpose: saying so would tell whose member this address is.
        refuse(db, actor, REFUSED, checked, _managed())
        return None
    if email is not None:
        link = _new_link(db, rt, email)
        rt.mailer.send(db, email.address, "Reset your hubgate password", _reset_body(rt, link))
    audit.record(db, actor, "user.password_reset_requested", target=checked,
                 data={"mailed": email is not None})  # fmt: skip
    return None


def _admissible(db: Session, rt: Runtime, actor: Actor, address: str) -> str | HubgateError:
    """The normalized address, counted, or why no link is made for it: malformed,
    asked for too often, or in the verified domain of an org that signs its people
    in through its IdP (said openly: it tells about the domain, not an account)."""
    limits, now = _limits(rt), rt.now()
    try:
        normalized = normalize_email(address)
        throttle.check(db, limits, normalized, actor.client_address, now, scope=_SCOPE)
    except (BadRequest, TooManyRequests) as exc:
        return exc
    throttle.failed(db, limits, normalized, actor.client_address, now, scope=_SCOPE)
    return sso_enforced(db, normalized, None) or normalized


def operator_link(
    db: Session, rt: Runtime, actor: Actor, address: str, *, force: bool = False
) -> Refused | str:
    """A reset link for the operator to hand over (``hubgate user reset-link``).

    Refused with ``sso_enforced`` where a mailed link would be, unless ``force``
    (break-glass for an account its IdP cannot sign in); audited either way."""
    normalized = normalize_email(address)
    email = db.scalars(select(Email).where(Email.address == normalized)).first()
    if email is None:
        raise BadRequest(f"No account has the email {normalized}.", code="unknown_email")
    refusal = sso_enforced(db, normalized, email.user)
    if refusal is not None and not force:
        return refuse(db, actor, REFUSED, normalized, refusal)
    link = _new_link(db, rt, email)
    audit.record(db, actor, "user.password_reset_link", target=normalized,
                 data={"forced": refusal is not None})  # fmt: skip
    return link


def _limits(rt: Runtime) -> throttle.Limits:
    window = timedelta(seconds=rt.settings.throttle_window_seconds)
    return throttle.Limits(window=window, per_account=PER_ADDRESS, per_address=PER_CLIENT)


def _verified_email(db: Session, address: str) -> Email | None:
    statement = select(Email).where(Email.address == address, Email.verified_at.is_not(None))
    return db.scalars(statement).first()


def _managed() -> Forbidden:
    return Forbidden("An organization signs this account in.", code="sso_enforced")


def _new_link(db: Session, rt: Runtime, email: Email) -> str:
    key = store.new_key()
    payload = {"user_id": email.user_id, "email_id": email.id, "address": email.address}
    ttl = timedelta(seconds=rt.settings.password_reset_seconds)
    store.put(db, RESET_PURPOSE, key, payload, ttl)
    return rt.url(f"/reset-password?token={key}")


def _reset_body(rt: Runtime, link: str) -> str:
    minutes = rt.settings.password_reset_seconds // 60
    return (
        "Someone (hopefully you) asked to reset the password of your hubgate account.\n\n"
        f"Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
        "The link works once. If you did not ask for it, ignore this mail: "
        "your password stays as it is.\n"
    )


def _printable(value: str) -> str:
    return value.encode("unicode_escape").decode()[:254]


# -- using a link ------------------------------------------------------------------


def check_link(
    db: Session, rt: Runtime, actor: Actor, key: str, signed_in: int | None
) -> Refused | None:
    """Whether ``key`` is a live link (the page asks before showing the form);
    nothing is spent."""
    found = _resolve(db, rt, key, signed_in)
    if isinstance(found, HubgateError):
        return refuse(db, actor, REFUSED, "", found)
    return None


def confirm_reset(
    db: Session, rt: Runtime, actor: Actor, key: str, password: str, signed_in: int | None
) -> Refused | User:
    """Spend the link, set ``password``, end every session of the account, mail a
    notice. ``signed_in`` is the account of the browser's session, if any: a link
    of another account is refused there."""
    found = _resolve(db, rt, key, signed_in)
    if isinstance(found, HubgateError):
        return refuse(db, actor, REFUSED, "", found)
    user, email = found
    try:
        PasswordPolicy.check(password, email.address)
    except BadRequest as exc:
        return refuse(db, actor, REFUSED, email.address, exc)
    if store.consume(db, RESET_PURPOSE, key, rt.now()) is None:  # a concurrent use won
        return refuse(db, actor, REFUSED, email.address, link_invalid())
    ended = _set_password(db, rt, user, password, keep=None)
    throttle.reset(db, email.address)
    audit.record(db, actor, "user.password_reset", target=email.address,
                 data={"sessions_ended": ended})  # fmt: skip
    return user


def _resolve(
    db: Session, rt: Runtime, key: str, signed_in: int | None
) -> tuple[User, Email] | HubgateError:
    """The account and email row a live link names, or why not: the row must still
    hold the same address on the same account (and be that of the browser's
    account, if one is signed in), and the orgs must still allow a password."""
    if not isinstance(key, str) or not _KEY.match(key):
        return link_invalid()
    payload = store.peek(db, RESET_PURPOSE, key, rt.now())
    email = _bound_email(db, payload)
    if email is None or (signed_in is not None and signed_in != email.user_id):
        return link_invalid()
    return sso_enforced(db, email.address, email.user) or (email.user, email)


def _bound_email(db: Session, payload: dict[str, Any] | None) -> Email | None:
    if payload is None:
        return None
    email_id, user_id = payload.get("email_id"), payload.get("user_id")
    if not isinstance(email_id, int) or not isinstance(user_id, int):
        return None
    email = db.get(Email, email_id)
    if email is None or email.user_id != user_id or email.address != payload.get("address"):
        return None
    return email


# -- setting a password ----------------------------------------------------------------


def change_password(
    db: Session,
    rt: Runtime,
    actor: Actor,
    user_id: int,
    current: str,
    new: str,
    session_id: int | None,
) -> Refused | None:
    """Set a new password after checking the current one (counted like a failed
    sign-in when wrong); the account's other sessions end and a notice is mailed."""
    user = db.get_one(User, user_id)
    address = _primary(user)
    limits = rt.limits
    try:
        throttle.check(db, limits, address, actor.client_address, rt.now())
    except TooManyRequests as exc:
        return refuse(db, actor, "user.password_change_refused", address, exc)
    if not rt.passwords.verify(user.password_hash, current):
        throttle.failed(db, limits, address, actor.client_address, rt.now())
        wrong = Forbidden("The current password is not right.", code="invalid_credentials")
        return refuse(db, actor, "user.password_change_refused", address, wrong)
    refusal: HubgateError | None = sso_enforced(db, address, user)
    if refusal is None:
        try:
            PasswordPolicy.check(new, address)
        except BadRequest as exc:
            refusal = exc
    if refusal is not None:
        return refuse(db, actor, "user.password_change_refused", address, refusal)
    ended = _set_password(db, rt, user, new, keep=session_id)
    audit.record(db, actor, "user.password_changed", target=address,
                 data={"sessions_ended": ended})  # fmt: skip
    return None


def _primary(user: User) -> str:
    emails = sorted(user.emails, key=lambda e: (not e.is_primary, e.id))
    return emails[0].address if emails else f"user:{user.id}"


def _set_password(db: Session, rt: Runtime, user: User, password: str, keep: int | None) -> int:
    user.password_hash = rt.passwords.hash(password)
    ended = sessions.end_all(db, user.id, keep=keep)
    when = rt.now().strftime("%Y-%m-%d %H:%M UTC")
    body = (
        f"The password of your hubgate account was changed on {when}, and the account "
        "was signed out everywhere else.\n\nIf this was not you, reset your password at "
        f"{rt.url('/forgot-password')} and tell your administrator.\n"
    )
    for email in user.emails:
        if email.verified_at is not None:
            rt.mailer.send(db, email.address, "Your hubgate password was changed", body)
    return ended
