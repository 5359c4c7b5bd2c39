"""Sign-up, emails and their verification, and password sign-in.

The identity rules (DESIGN.md §4) live here:

- an account is *verified* when its primary address is; an unverified account
  holds nothing that outlives it (no tokens, memberships, SSO links or further
  addresses: :func:`require_verified`) and expires (:func:`purge_unverified`);
- an unverified address reserves nothing: whoever proves it (a sign-up, the org's
  IdP or SCIM) takes it, and its holder loses it (:func:`release_unverified`);
- a verification link verifies only in a session of the account it was made for
  (:func:`verify_email`), so knowing the mailbox is not enough to take an account
  someone else created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit, names, store
from hubgate.accounts import throttle
from hubgate.accounts.emails import accepted_email, normalize_email, split_email
from hubgate.accounts.passwords import PasswordPolicy
from hubgate.db.models import Email, User
from hubgate.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HubgateError,
    NotFound,
    Unauthenticated,
)

if TYPE_CHECKING:
    from hubgate.audit import Actor
    from hubgate.runtime import Runtime

__all__ = [
    "add_email",
    "create_user",
    "find_by_email",
    "find_verified",
    "is_verified",
    "password_sign_in",
    "purge_unverified",
    "release_unverified",
    "remove_email",
    "require_verified",
    "send_verification",
    "sign_up",
    "verify_email",
]

VERIFY_PURPOSE = "email_verify"
MAX_EMAILS = 10


@dataclass(frozen=True, slots=True)
class SignInRefused:
    """A refused sign-in; the caller commits the audit record, then raises ``error``."""

    error: HubgateError


def find_by_email(db: Session, address: str) -> User | None:
    """The account holding ``address``, verified or not (password sign-in only:
    an unverified account signs in to verify itself)."""
    return db.scalars(select(User).join(Email).where(Email.address == address)).first()


def find_verified(db: Session, address: str) -> User | None:
    """The account that has verified ``address``: the only holder an address binds."""
    return db.scalars(
        select(User).join(Email).where(Email.address == address, Email.verified_at.is_not(None))
    ).first()


def is_verified(user: User) -> bool:
    """An account is verified when its primary address is."""
    return any(e.is_primary and e.verified_at is not None for e in user.emails)


class AccountUnverified(Forbidden):
    """An unverified account may hold nothing that outlives it."""

    audited = True
    default_code = "account_unverified"
    default_message = (
        "Confirm your email address first: open the link we mailed you. An account "
        "whose address is not confirmed cannot hold tokens, memberships or other addresses."
    )


def require_verified(user: User) -> None:
    if not is_verified(user):
        raise AccountUnverified()


def release_unverified(db: Session, actor: Actor, address: str, reason: str) -> bool:
    """Take ``address`` from an account that holds it unverified, so that whoever
    proved it can have it; the holder's account goes too when it was its primary
    address (an unverified account holds nothing else). ``False`` when no one
    holds it unverified."""
    email = db.scalars(
        select(Email).where(Email.address == address, Email.verified_at.is_(None))
    ).first()
    if email is None:
        return False
    holder, primary = email.user, email.is_primary
    if primary:
        db.delete(holder)
    else:
        holder.emails.remove(email)
    db.flush()
    audit.record(
        db, actor, "user.email_released", target=address,
        data={"reason": reason, "account_deleted": primary, "user": holder.id},
    )  # fmt: skip
    return True


def purge_unverified(db: Session, actor: Actor, now: datetime, days: int) -> int:
    """Delete the accounts whose primary address is still unverified ``days`` after
    they were created, freeing their addresses; how many went."""
    expired = select(Email.address).where(
        Email.is_primary.is_(True),
        Email.verified_at.is_(None),
        Email.created_at <= now - timedelta(days=days),
    )
    addresses = list(db.scalars(expired.limit(1000)))
    for address in addresses:
        release_unverified(db, actor, address, "expired")
    return len(addresses)


def create_user(
    db: Session,
    rt: Runtime,
    address: str,
    *,
    password: str | None,
    display_name: str | None = None,
    verified: bool = False,
) -> User:
    """Create an account with one primary email (helper: no audit, no mail); the
    address must be one hubgate takes in (:func:`~hubgate.accounts.emails.accepted_email`)."""
    normalized = accepted_email(address, rt.settings.env)
    if password is not None:
        PasswordPolicy.check(password, normalized)
    now = rt.now()
    user = User(
        display_name=names.display_name(display_name, normalized.split("@", maxsplit=1)[0]),
        password_hash=rt.passwords.hash(password) if password is not None else None,
    )
    user.emails.append(_email_row(normalized, primary=True, verified_at=now if verified else None))
    db.add(user)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict("An account with that email already exists.", code="email_taken") from exc
    return user


def _email_row(address: str, *, primary: bool, verified_at: object = None) -> Email:
    _local, domain = split_email(address)
    return Email(address=address, domain=domain, is_primary=primary, verified_at=verified_at)


def sign_up(
    db: Session, rt: Runtime, actor: Actor, address: str, password: str, display_name: str | None
) -> User:
    release_unverified(db, actor, accepted_email(address, rt.settings.env), "signup")
    user = create_user(db, rt, address, password=password, display_name=display_name)
    send_verification(db, rt, user.emails[0])
    audit.record(db, actor, "user.signed_up", target=user.emails[0].address)
    return user


def send_verification(db: Session, rt: Runtime, email: Email) -> None:
    key = store.new_key()
    ttl = timedelta(seconds=rt.settings.email_token_seconds)
    payload = {"email_id": email.id, "address": email.address, "user_id": email.user_id}
    store.put(db, VERIFY_PURPOSE, key, payload, ttl)
    link = rt.url(f"/verify-email?token={key}")
    days = rt.settings.unverified_account_days
    body = (
        f"Open this link to confirm {email.address} on hubgate:\n\n{link}\n\n"
        "The link works only while you are signed in to the account that asked for it; "
        "if you are signed out, it asks for that account's password first.\n\n"
        "Did not sign up, or add this address? Then ignore this mail and do not open the "
        "link: an address nobody confirms stays yours, anyone can still sign up with it, "
        f"and an unconfirmed account is deleted after {days} days.\n"
    )
    rt.mailer.send(db, email.address, "Confirm your email address", body)


class LinkWrongAccount(Forbidden):
    audited = True
    default_code = "link_wrong_account"
    default_message = (
        "This confirmation link belongs to another account. Sign out, then sign in to "
        "the account that asked for it and open the link again."
    )


def verify_email(db: Session, rt: Runtime, actor: Actor, key: str, user_id: int) -> Email:
    """Verify the address a link was made for, in a session of its account
    (``user_id``); a link opened in another account's session stays unspent."""
    invalid = BadRequest(
        "This verification link is not valid, was already used or has expired.",
        code="link_invalid",
    )
    if not key or len(key) > 128:
        raise invalid
    seen = store.peek(db, VERIFY_PURPOSE, key, rt.now())
    email = db.get(Email, seen["email_id"]) if seen else None
    if email is None or seen is None or email.address != seen.get("address"):
        raise invalid
    if email.user_id != user_id or seen.get("user_id", email.user_id) != user_id:
        raise LinkWrongAccount()
    if store.consume(db, VERIFY_PURPOSE, key, rt.now()) is None:
        raise invalid
    if email.verified_at is None:
        email.verified_at = rt.now()
    audit.record(db, actor, "user.email_verified", target=email.address)
    return email


def add_email(db: Session, rt: Runtime, actor: Actor, user: User, address: str) -> Email:
    require_verified(user)
    normalized = accepted_email(address, rt.settings.env)
    if any(e.address == normalized for e in user.emails):
        raise Conflict("That email is already on your account.", code="email_taken")
    release_unverified(db, actor, normalized, "email_added")
    count = db.scalar(select(func.count()).select_from(Email).where(Email.user_id == user.id))
    if (count or 0) >= MAX_EMAILS:
        raise BadRequest(f"An account holds at most {MAX_EMAILS} emails.", code="too_many_emails")
    email = _email_row(normalized, primary=False)
    email.user_id = user.id
    db.add(email)
    try:
        db.flush()
    except IntegrityError as exc:
        raise Conflict("That email is already in use.", code="email_taken") from exc
    send_verification(db, rt, email)
    audit.record(db, actor, "user.email_added", target=normalized)
    return email


def remove_email(db: Session, actor: Actor, user: User, address: str) -> None:
    email = next((e for e in user.emails if e.address == address), None)
    if email is None:
        raise NotFound("That email is not on your account.")
    if email.is_primary:
        raise Conflict("The primary email cannot be removed.", code="primary_email")
    db.delete(email)
    audit.record(db, actor, "user.email_removed", target=address)


PasswordGuard = Callable[[Session, str, User], HubgateError | None]


def password_sign_in(
    db: Session,
    rt: Runtime,
    actor: Actor,
    address: str,
    password: str,
    guard: PasswordGuard | None = None,
) -> User | SignInRefused:
    """Check the password with throttling; refusals are audited, not raised.

    ``guard`` may still refuse a correct password (an org enforcing SSO)."""
    try:
        normalized = normalize_email(address)
    except BadRequest:
        error = Unauthenticated("Wrong email or password.", code="invalid_credentials")
        return _refuse(db, actor, address.encode("unicode_escape").decode()[:254], error)
    now = rt.now()
    try:
        throttle.check(db, rt.limits, normalized, actor.client_address, now)
    except HubgateError as exc:
        return _refuse(db, actor, normalized, exc)
    user = find_by_email(db, normalized)
    if not rt.passwords.verify(user.password_hash if user else None, password) or user is None:
        throttle.failed(db, rt.limits, normalized, actor.client_address, now)
        error = Unauthenticated("Wrong email or password.", code="invalid_credentials")
        return _refuse(db, actor, normalized, error)
    throttle.reset(db, normalized)
    refusal = guard(db, normalized, user) if guard is not None else None
    if refusal is not None:
        return _refuse(db, actor, normalized, refusal)
    if user.password_hash and rt.passwords.needs_rehash(user.password_hash):
        user.password_hash = rt.passwords.hash(password)
    audit.record(db, actor, "auth.login", target=normalized, data={"method": "password"})
    return user


def _refuse(db: Session, actor: Actor, target: str, error: HubgateError) -> SignInRefused:
    audit.record(db, actor, "auth.login_refused", target=target, reason=error.code)
    return SignInRefused(error)
