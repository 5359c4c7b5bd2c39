"""The forward-auth answer computed from the database: who the credential is, the
resource the route names, and :func:`hubgate.access.decide` over them, with how
long the answer holds if nothing changes.

The proxy understands only 200, 401 and 403, so every refusal is one of those
with ``X-Hubgate-Reason``; an unknown resource answers ``not_found`` (401 to an
anonymous caller, who should sign in, 403 to anyone else). An allow carries who
is calling (``X-Hubgate-User``, ``X-Hubgate-Org``, ``X-Hubgate-Action``,
``X-Hubgate-Credential``) for the upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hubgate.access import CredentialKind, Deny, decide
from hubgate.errors import HubgateError
from hubgate.gate import credentials
from hubgate.gate.assertion import Subject
from hubgate.gate.cache import MAX_AGE
from hubgate.gate.paths import Route
from hubgate.principals import Credential, resource_access
from hubgate.runtime import Runtime

__all__ = ["ALLOW", "Answer", "Headers", "evaluate", "refusal"]

ALLOW = "allow"
Headers = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    """``allow`` or the refusal's reason code."""
    headers: Headers
    until: datetime
    """When this answer stops holding even if nothing changes."""
    token_id: int | None = None
    resource_id: int | None = None
    subject: Subject | None = None
    """What an allowed answer's signed assertion for the upstream says."""

    @property
    def allowed(self) -> bool:
        return self.reason == ALLOW


def refusal(status: int, reason: str, until: datetime) -> Answer:
    return Answer(status, reason, ((b"x-hubgate-reason", reason.encode()),), until)


def evaluate(rt: Runtime, authorization: str | None, cookie: str | None, route: Route) -> Answer:
    """Answer the proxy from the database, in one short transaction."""
    now = rt.now()
    horizon = now + MAX_AGE
    with rt.db.transaction() as db:
        try:
            credential = credentials.resolve(db, rt, authorization, cookie)
        except HubgateError as exc:
            return refusal(401, exc.code, horizon)
        found = resource_access(db, credential, route.org, route.kind, route.name)
    until = min(t for t in (horizon, credential.until, found and found.sso_until) if t)
    if found is None:
        anonymous = credential.kind is CredentialKind.ANONYMOUS
        return refusal(401 if anonymous else 403, "not_found", until)
    decision = decide(found.principal, route.action, found.target)
    if isinstance(decision, Deny):
        return refusal(_status(credential, decision), decision.reason, until)
    who = "" if credential.kind is CredentialKind.ANONYMOUS else credential.subject
    resource = f"{route.org}/{route.kind.value}/{route.name}"
    subject = Subject(who, credential.kind.value, route.org, route.action.value, resource)
    return Answer(
        200, ALLOW, _identity(credential, route), until, credential.token_id, found.resource_id,
        subject,
    )  # fmt: skip


def _status(credential: Credential, denial: Deny) -> int:
    if credential.kind is CredentialKind.ANONYMOUS or denial.reason in {
        "sso_required",
        "credential_revoked",
    }:
        return 401
    return 403


def _identity(credential: Credential, route: Route) -> Headers:
    identity = [
        (b"x-hubgate-org", route.org.encode()),
        (b"x-hubgate-action", route.action.value.encode()),
        (b"x-hubgate-credential", credential.kind.value.encode()),
    ]
    if credential.kind is not CredentialKind.ANONYMOUS:
        identity.append((b"x-hubgate-user", credential.subject.encode()))
    return tuple(identity)
