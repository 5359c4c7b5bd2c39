"""A sign-in through a platform provider, one way (as :mod:`hubgate.sso.flows.signin`):

1. **Start**: state, nonce and PKCE verifier in the shared store, bound to the
   browser; the provider's authorization URL.
2. **Spend**: the callback's state, by its own browser, in a transaction of its
   own that commits even when it refuses (with the refusal's audit record).
3. **Verify**, with no transaction open: code exchange, id_token, keys and
   userinfo by the OIDC relying party (:func:`hubgate.sso.flows.oidc.verify`),
   or GitHub's token, ``/user`` and ``/user/emails``
   (:func:`hubgate.sso.platform.github_flow.verify`).
4. **Decide** (:mod:`.rules`) and, unless an org in managed mode takes this
   person, open a plain session: own credentials, no SSO authentication.
   A refusal changes nothing but the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hubgate import audit, metrics, store
from hubgate.accounts import sessions, users
from hubgate.accounts.emails import accepted_email, normalize_email
from hubgate.audit import Actor
from hubgate.db.models import PlatformLink, PlatformProvider, User
from hubgate.errors import BadRequest, Conflict, Forbidden, HubgateError
from hubgate.runtime import Runtime
from hubgate.sso import enforcement, github
from hubgate.sso.flows import oidc as oidc_flow
from hubgate.sso.identity import Identity
from hubgate.sso.oidc import errors
from hubgate.sso.oidc.config import OidcConfig
from hubgate.sso.oidc.flow import authorization_url, pkce
from hubgate.sso.platform import github_flow, providers, rules
from hubgate.sso.platform.providers import GithubConfig

__all__ = ["Caller", "ProviderSignIn", "SignedIn", "start"]

PENDING = "platform_state"
STATE_TTL = timedelta(minutes=10)
_RACE_RETRIES = 3

_MESSAGES = {
    "provider_email_missing": "The provider did not tell us your email address.",
    "provider_email_unverified": (
        "The provider does not vouch for your email address: verify it there, or sign "
        "in with your password."
    ),
}


@dataclass(frozen=True, slots=True)
class Caller:
    """The request finishing a sign-in, as the sign-in needs it."""

    actor: Actor
    browser_key: str
    user_agent: str | None
    old_cookie: str | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    cookie: str
    user_id: int
    next: str


@dataclass(frozen=True, slots=True)
class _Spent:
    config: OidcConfig | GithubConfig
    nonce: str
    verifier: str
    next: str


def start(rt: Runtime, provider_id: int, next_path: str, browser_key: str) -> str:
    """One entry, bound to the browser; the provider's authorization URL."""
    with rt.db.transaction() as db:
        config = _config(rt, providers.get(db, provider_id))
        state, nonce = store.new_key(), store.new_key()
        verifier, challenge = pkce()
        pending = {"provider_id": provider_id, "nonce": nonce, "verifier": verifier,
                   "next": next_path}  # fmt: skip
        store.put(db, PENDING, store.bound(state, browser_key), pending, STATE_TTL)
    if isinstance(config, GithubConfig):
        return github.authorization_url(
            config.endpoints, config.client_id, config.redirect_uri, state, challenge
        )
    return authorization_url(config, state, nonce, challenge)


def _config(rt: Runtime, row: PlatformProvider) -> OidcConfig | GithubConfig:
    if row.kind == "github":
        return providers.github_config(rt, row)
    return providers.oidc_config(rt, row)


def _verify(rt: Runtime, spent: _Spent, params: Mapping[str, str]) -> Identity:
    """The answer, by the provider's protocol, with no transaction open."""
    if isinstance(spent.config, GithubConfig):
        return github_flow.verify(rt, spent.config, params, spent.verifier)
    return oidc_flow.verify(rt, spent.config, params, spent.verifier, spent.nonce)


@dataclass(frozen=True, slots=True)
class ProviderSignIn:
    """The redirect URI's answer in three steps, as
    :class:`hubgate.sso.flows.signin.OidcSignIn`: :meth:`spend` the state,
    :meth:`verify` the answer with the provider (the network, no transaction open),
    :meth:`conclude` with the account. Every refusal after the state is spent is
    audited in a transaction of its own, with the Identity that arrived, if any."""

    rt: Runtime
    caller: Caller
    provider_id: int
    params: Mapping[str, str]

    def spend(self) -> _Spent:
        return _spend(self.rt, self.caller, self.provider_id, self.params)

    def verify(self, spent: _Spent) -> tuple[_Spent, Identity]:
        try:
            return spent, _verify(self.rt, spent, self.params)
        except HubgateError as exc:
            self._refused(exc, None)
            raise

    def conclude(self, answer: tuple[_Spent, Identity]) -> SignedIn:
        spent, identity = answer
        try:
            return _signed_in(self.rt, self.caller, self.provider_id, identity, spent.next)
        except HubgateError as exc:
            self._refused(exc, identity)
            raise

    def _refused(self, exc: HubgateError, identity: Identity | None) -> None:
        with self.rt.db.transaction() as db:
            _refused(db, self.caller.actor, self.provider_id, exc.code, identity)


def _signed_in(
    rt: Runtime, caller: Caller, provider_id: int, identity: Identity, next_path: str
) -> SignedIn:
    for _attempt in range(_RACE_RETRIES):
        try:
            return _sign_in(rt, caller, provider_id, identity, next_path)
        except IntegrityError:
            continue  # a concurrent first sign-in made the account or link: find it
    raise Conflict("Too many sign-ins at once; try again.", code="sso_busy")


def _spend(rt: Runtime, caller: Caller, provider_id: int, params: Mapping[str, str]) -> _Spent:
    """The state, spent by its own browser in a transaction that commits also when
    it refuses; another browser's state is refused and left for its own."""
    state = params.get("state", "")[:128]
    with rt.db.transaction() as db:
        key = store.bound(state, caller.browser_key)
        found = store.consume(db, PENDING, key, rt.now()) if state else None
        row = db.get(PlatformProvider, provider_id)
        if found is None or found.get("provider_id") != provider_id or row is None:
            _refused(db, caller.actor, provider_id, errors.StateInvalid.default_code, None)
            found = None
        else:
            config = _config(rt, row)
    if found is None:
        raise errors.StateInvalid()
    return _Spent(config, found["nonce"], found["verifier"], str(found["next"]))


def _sign_in(
    rt: Runtime, caller: Caller, provider_id: int, identity: Identity, next_path: str
) -> SignedIn:
    """The rules, then the account and a session in one transaction; a refusal is
    raised before anything changes (and rolls back all the same)."""
    with rt.db.transaction() as db:
        decision = rules.decide(_facts(db, provider_id, identity))
        if isinstance(decision, rules.Refuse):
            raise Forbidden(_MESSAGES[decision.code], code=decision.code)
        refusal = _enforced(db, decision)
        if refusal is not None:
            raise refusal
        user_id = _apply(db, rt, caller.actor, provider_id, identity, decision)
        signed = _open_session(db, rt, caller, provider_id, user_id, next_path)
    metrics.SIGN_INS.labels("provider", "success").inc()
    return signed


def _facts(db: Session, provider_id: int, identity: Identity) -> rules.Facts:
    linked = db.scalar(
        select(PlatformLink.user_id).where(
            PlatformLink.provider_id == provider_id, PlatformLink.subject == identity.subject
        )
    )
    email = _normalized(identity.email)
    holder = users.find_verified(db, email) if email is not None else None
    return rules.Facts(
        linked_user=linked, email=email, email_vouched=identity.email_verified,
        verified_holder=holder.id if holder is not None else None,
    )  # fmt: skip


def _normalized(address: str | None) -> str | None:
    try:
        return normalize_email(address) if address else None
    except BadRequest:
        return None


def _enforced(db: Session, decision: rules.SignIn | rules.Link | rules.Create) -> Forbidden | None:
    """An org in managed mode that signs this person in through its IdP, never a
    platform provider (:func:`hubgate.sso.enforcement.sso_enforced`)."""
    if isinstance(decision, rules.Create):
        return enforcement.sso_enforced(db, decision.email, None)
    user = db.get(User, decision.user_id)
    if user is None:
        return Forbidden("That account is gone.", code="account_unknown")
    address = decision.email if isinstance(decision, rules.Link) else _primary(user)
    return enforcement.sso_enforced(db, address, user)


def _primary(user: User) -> str:
    return next(e.address for e in user.emails if e.is_primary)


def _apply(
    db: Session,
    rt: Runtime,
    actor: Actor,
    provider_id: int,
    identity: Identity,
    decision: rules.SignIn | rules.Link | rules.Create,
) -> int:
    if isinstance(decision, rules.SignIn):
        return decision.user_id
    if isinstance(decision, rules.Create):
        address = accepted_email(decision.email, rt.settings.env)
        users.release_unverified(db, actor, address, "provider_signup")
        user = users.create_user(
            db, rt, address, password=None, display_name=identity.display_name, verified=True
        )
        audit.record(db, actor, "user.signed_up", target=address, data={"provider": provider_id})
        user_id = user.id
    else:
        user_id = decision.user_id
        sessions.end_all(db, user_id)  # a new way in: the other sessions end
    db.add(PlatformLink(provider_id=provider_id, subject=identity.subject, user_id=user_id))
    db.flush()
    audit.record(
        db, actor, "user.provider_linked", target=f"provider:{provider_id}",
        data={"user": user_id, "email": identity.email, "subject": identity.subject},
    )  # fmt: skip
    return user_id


def _open_session(
    db: Session, rt: Runtime, caller: Caller, provider_id: int, user_id: int, next_path: str
) -> SignedIn:
    """A session of the account's own, as a password sign-in opens (the old one ends)."""
    if caller.old_cookie:
        sessions.end(db, caller.old_cookie)
    link = db.scalars(
        select(PlatformLink).where(
            PlatformLink.provider_id == provider_id, PlatformLink.user_id == user_id
        )
    ).first()
    if link is not None:
        link.last_sign_in_at = rt.now()
    cookie, _id = sessions.start(
        db, user_id, rt.lifetimes, rt.now(), client_address=caller.actor.client_address,
        user_agent=caller.user_agent,
    )  # fmt: skip
    audit.record(
        db, caller.actor, "auth.login", target=f"user:{user_id}",
        data={"method": "provider", "provider": provider_id},
    )  # fmt: skip
    return SignedIn(cookie, user_id, next_path)


def _refused(
    db: Session, actor: Actor, provider_id: int, code: str, identity: Identity | None
) -> None:
    metrics.count_refusal("provider", code)
    data: dict[str, Any] = {"provider": provider_id}
    if identity is not None:
        data.update(email=identity.email, subject=identity.subject)
    audit.record(
        db, actor, "auth.login_refused", target=f"provider:{provider_id}", reason=code, data=data
    )
