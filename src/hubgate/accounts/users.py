"""Sign-up, emails and their verification, and password sign-in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit, store
from hubgate.accounts import throttle
from hubgate.accounts.emails import normalize_email, split_email
from hubgate.accounts.passwords import PasswordPolicy
from hubgate.audit import Actor
from hubgate.db.models import Email, User
from hubgate.errors import BadRequest, Conflict, HubgateError, NotFound, Unauthenticated
from hubgate.orgs import names
from hubgate.runtime import Runtime

__all__ = [
    "add_email",
    "create_user",
    "find_by_email",
    "password_sign_in",
    "remove_email",
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
    return db.scalars(select(User).join(Email).where(Email.address == address)).first()


def create_user(
    db: Session,
    rt: Runtime,
    address: str,
    *,
    password: str | None,
    display_name: str | None = None,
    verified: bool = False,
) -> User:
    """Create an account with one primary email (helper: no audit, no mail)."""
    normalized = normalize_email(address)
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
    user = create_user(db, rt, address, password=password, display_name=display_name)
    send_verification(db, rt, user.emails[0])
    audit.record(db, actor, "user.signed_up", target=user.emails[0].address)
    return user


def send_verification(db: Session, rt: Runtime, email: Email) -> None:
    key = store.new_key()
    ttl = timedelta(seconds=rt.settings.email_token_seconds)
    store.put(db, VERIFY_PURPOSE, key, {"email_id": email.id, "address": email.address}, ttl)
    link = rt.url(f"/verify-email?token={key}")
    body = f"Open this link to confirm {email.address} on hubgate:\n\n{link}\n"
    rt.mailer.send(db, email.address, "Confirm your email address", body)


def verify_email(db: Session, rt: Runtime, actor: Actor, key: str) -> Email:
    if not key or len(key) > 128:
        raise BadRequest("This verification link is not valid.", code="link_invalid")
    payload = store.consume(db, VERIFY_PURPOSE, key, rt.now())
    email = db.get(Email, payload["email_id"]) if payload else None
    if email is None or payload is None or email.address != payload.get("address"):
        raise BadRequest(
            "This verification link is not valid, was already used or has expired.",
            code="link_invalid",
        )
    if email.verified_at is None:
        email.verified_at = rt.now()
    audit.record(db, actor, "user.email_verified", target=email.address)
    return email


def add_email(db: Session, rt: Runtime, actor: Actor, user: User, address: str) -> Email:
    normalized = normalize_email(address)
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
