"""One sign-in, one way (DESIGN.md §2): spend, verify, then the org's policy.

1. **Spend.** The adapter takes the answer's one-time state (the pending SAML
   request and the assertion ids, or the OIDC state) and what the browser started,
   in a short transaction of its own. It commits even when the answer is refused,
   with the refusal's audit record, so nothing (a refusal, the policy's rollback, a
   lost race) can make a spent answer usable again.
2. **Verify.** SAML verifies while spending (no network). OIDC then talks to the
   provider (token, keys, userinfo) with no transaction open: :class:`OidcSignIn`
   splits its sign-in into these steps so that the web layer awaits the provider
   on the event loop, holding none of the few request threads
   (:mod:`hubgate.web.threads`, :mod:`hubgate.sso.fetch_loop`).
3. **The policy** runs in a transaction of its own and ends in
   :class:`~hubgate.sso.login.SignedIn`; a lost race for a unique row (twenty first
   sign-ins of one person at once) runs it again and finds the winner's rows. A
   refusal is audited in a transaction of its own, with the Identity that arrived.

Through a connection that is not active yet, a sign-in only shows the Identity
(a test sign-in, which marks a draft connection verified).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from hubgate import audit, metrics
from hubgate.audit import Actor
from hubgate.db.models import SsoConnection
from hubgate.errors import Conflict, HubgateError
from hubgate.runtime import Runtime
from hubgate.sso import connections, login
from hubgate.sso.flows import oidc as oidc_flow
from hubgate.sso.flows import saml as saml_flow
from hubgate.sso.flows import started
from hubgate.sso.flows.verified import Verified
from hubgate.sso.identity import Browser, Identity
from hubgate.sso.login import SignedIn
from hubgate.sso.states import ConnectionState

__all__ = ["Caller", "OidcSignIn", "Outcome", "policy", "saml"]

_RACE_RETRIES = 3
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where the browser goes next, with the session opened (``signed``), or only
    the Identity to show when the connection is not active yet."""

    identity: Identity
    next: str
    signed: SignedIn | None


@dataclass(frozen=True, slots=True)
class Caller:
    """The request finishing a sign-in, as the sign-in needs it."""

    actor: Actor
    browser_key: str
    user_agent: str | None


def saml(
    rt: Runtime, caller: Caller, connection_id: int, saml_response: str, relay_state: str
) -> Outcome:
    """The assertion consumer: an IdP's Response, HTTP-POST binding."""

    def spend(db: Session) -> tuple[Verified, Browser]:
        connection = connections.saml_endpoint(db, connection_id)
        verified = saml_flow.finish(
            db, rt, connection, saml_response, relay_state, caller.browser_key
        )
        return verified, _browser(db, rt, caller, connection.org_id)

    verified, browser = _spend(rt, caller.actor, connection_id, spend)
    return _conclude(rt, caller.actor, verified, browser)


@dataclass(frozen=True, slots=True)
class OidcSignIn:
    """The redirect URI's answer, in three steps: :meth:`spend` (the database),
    :meth:`verify` (the provider, over the network, with no transaction open) and
    :meth:`conclude` (the database). Each step takes what the one before returned."""

    rt: Runtime
    caller: Caller
    connection_id: int
    params: Mapping[str, str]

    def spend(self) -> oidc_flow.Taken:
        """The state, spent by its own browser (committed also when refused)."""

        def take(db: Session) -> oidc_flow.Taken:
            connection = connections.oidc_endpoint(db, self.connection_id)
            return oidc_flow.take(db, self.rt, connection, self.params, self.caller.browser_key)

        return _spend(self.rt, self.caller.actor, self.connection_id, take)

    async def verify(self, taken: oidc_flow.Taken) -> tuple[Verified, Browser] | HubgateError:
        """The provider's answer, tokens, keys and userinfo, awaited on the event
        loop, and the browser that started the sign-in; or the refusal, which
        :meth:`conclude` audits (the event loop opens no transaction)."""
        try:
            identity = await oidc_flow.verify_on_loop(
                self.rt, taken.config, self.params, taken.verifier, taken.nonce
            )
        except HubgateError as exc:
            return exc
        actor, user_agent = self.caller.actor, self.caller.user_agent
        browser = taken.started.browser(client_address=actor.client_address, user_agent=user_agent)
        return Verified(taken.connection, identity, taken.next), browser

    def conclude(self, answer: tuple[Verified, Browser] | HubgateError) -> Outcome:
        """The org's policy and the session (or a test sign-in's Identity); a
        refusal from :meth:`verify` audited, then raised."""
        if isinstance(answer, HubgateError):
            with self.rt.db.transaction() as db:
                _refused(db, self.caller.actor, self.connection_id, answer, None)
            raise answer
        verified, browser = answer
        return _conclude(self.rt, self.caller.actor, verified, browser)


def _browser(db: Session, rt: Runtime, caller: Caller, org_id: int) -> Browser:
    return started.recall(
        db, caller.browser_key, org_id, rt.now(), client_address=caller.actor.client_address,
        user_agent=caller.user_agent,
    )  # fmt: skip


def _spend(rt: Runtime, actor: Actor, connection_id: int, take: Callable[[Session], _T]) -> _T:
    """``take`` in a transaction that commits whatever it spent, also when it
    refuses (then with the refusal's audit record)."""
    with rt.db.transaction() as db:
        try:
            return take(db)
        except HubgateError as exc:
            refusal = exc
            _refused(db, actor, connection_id, exc, None)
    raise refusal


def _conclude(rt: Runtime, actor: Actor, verified: Verified, browser: Browser) -> Outcome:
    through, identity = verified.connection, verified.identity
    if through.state != ConnectionState.ACTIVE:
        with rt.db.transaction() as db:
            connections.identity_verified(db, rt, actor, through, identity)
        metrics.SIGN_INS.labels(through.kind, "test_sign_in").inc()
        return Outcome(identity, verified.next, None)
    try:
        signed = policy(rt, actor, verified, browser)
    except HubgateError as exc:
        with rt.db.transaction() as db:
            connections.identity_verified(db, rt, actor, through, identity)
            _refused(db, actor, through.id, exc, identity)
        raise
    metrics.SIGN_INS.labels(through.kind, "success").inc()
    return Outcome(identity, verified.next, signed)


def policy(rt: Runtime, actor: Actor, verified: Verified, browser: Browser) -> SignedIn:
    """The org's policy in a transaction of its own; a lost race runs it again."""
    for _attempt in range(_RACE_RETRIES):
        try:
            with rt.db.transaction() as db:
                return login.sign_in(
                    db, rt, actor, verified.connection.id, verified.identity, browser,
                    before_writes=_verified(db, rt, actor, verified),
                )  # fmt: skip
        except login.RACES:
            continue
    raise Conflict("Too many sign-ins at once; try again.", code="sso_busy")


def _verified(db: Session, rt: Runtime, actor: Actor, verified: Verified) -> Callable[[], None]:
    """The ``sso.identity_verified`` record, the policy transaction's first write:
    :func:`login.sign_in` writes it after the reads that decide the sign-in."""
    return lambda: connections.identity_verified(
        db, rt, actor, verified.connection, verified.identity
    )


def _refused(
    db: Session, actor: Actor, connection_id: int, exc: HubgateError, identity: Identity | None
) -> None:
    """The refusal, audited under the connection's org, with whom it refused; the
    metric names the connection only when it exists (a label from a closed set)."""
    connection = db.get(SsoConnection, connection_id)
    metrics.count_refusal("sso", exc.code, connection.id if connection else None)
    data = {"email": identity.email, "subject": identity.subject} if identity else None
    audit.record(
        db, actor, "sso.login_refused", org_id=connection.org_id if connection else None,
        target=f"connection:{connection_id}", reason=exc.code, data=data,
    )  # fmt: skip
