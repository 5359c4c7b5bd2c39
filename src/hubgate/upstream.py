"""Verify, inside a model server, who hubgate says is calling.

With ``HUBGATE_UPSTREAM_ASSERTION=true`` each request that nginx lets through
carries ``X-Hubgate-Assertion``: a JWT hubgate signed (ES256) with a key it
publishes at ``{hubgate}/.well-known/jwks.json``. This module runs in the model
server's process, so it imports only joserfc, httpx and starlette, nothing of
hubgate's server::

    verifier = AssertionVerifier("https://hubgate.example.com",
                                 audience="acme/deployment/chat")
    app.add_middleware(AssertionMiddleware, verifier=verifier)   # Starlette
    # or, per route in FastAPI:
    def predict(caller: UpstreamIdentity = Depends(verifier)) -> ...

The checks, in order, each refusing with its own ``reason``: the token's size;
its JOSE header (``alg`` exactly ES256, so ``none``, HS256 keyed with the public
key and every other algorithm are refused before any key is used; ``typ``
``hubgate-assertion+jwt``; a ``kid``); the key, from the cached JWK Set (fetched
again for an unknown ``kid`` at most once per ``refetch_seconds``, the document
bounded in size and keys); the signature; then ``iss``, ``aud`` (the resource
this server serves, ``org/kind/name``), ``exp`` and ``iat`` with a small leeway,
and a lifetime of at most a minute.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ClaimError, JoseError, MissingClaimError
from joserfc.jwk import ECKey
from joserfc.jwt import ClaimsOption
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "AssertionInvalid",
    "AssertionMiddleware",
    "AssertionVerifier",
    "UpstreamIdentity",
    "identity_of",
]

HEADER = "x-hubgate-assertion"
ALGORITHM = "ES256"
TYPE = "hubgate-assertion+jwt"
MAX_TOKEN_CHARS = 4096
MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 16
MAX_LIFETIME = 60
_STATE = "hubgate_identity"
_SEEN = 1024
_STRINGS = ("org", "act", "res", "cred", "jti")
_REQUIRED: dict[str, ClaimsOption] = {name: {"essential": True} for name in _STRINGS}


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """Who calls, as hubgate vouched: ``subject`` is a person's email or
    ``token:ID`` (``None`` for an anonymous caller of a public resource)."""

    subject: str | None
    credential: str
    org: str
    action: str
    resource: str
    token_id: str
    expires_at: int

    @property
    def anonymous(self) -> bool:
        return self.subject is None


class AssertionInvalid(Exception):
    """The assertion is missing or fails a check; ``reason`` says which, ``status``
    is 401, or 503 when hubgate's key set cannot be had."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason, self.message, self.status = reason, message, status


class AssertionVerifier:
    """Checks assertions from the hubgate at ``hubgate_url`` for ``audience``
    (the resources this server serves); thread-safe, one per process."""

    def __init__(
        self,
        hubgate_url: str,
        audience: str | Collection[str],
        *,
        jwks_url: str | None = None,
        leeway: int = 5,
        cache_seconds: float = 300.0,
        refetch_seconds: float = 30.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = hubgate_url.rstrip("/")
        self.audiences = [audience] if isinstance(audience, str) else list(audience)
        if not self.audiences:
            raise ValueError("name the resources this server serves, e.g. acme/deployment/chat")
        self.jwks_url = jwks_url or f"{self.issuer}/.well-known/jwks.json"
        self.leeway, self._clock = leeway, clock
        self._cache_seconds, self._refetch_seconds = cache_seconds, refetch_seconds
        self._client = client or httpx.Client(timeout=5.0, follow_redirects=False)
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._keys: dict[str, ECKey] = {}
        self._fetched_at = self._tried_at = float("-inf")
        self._seen: OrderedDict[str, UpstreamIdentity] = OrderedDict()

    def close(self) -> None:
        """Close the HTTP client the key set is fetched with (at shutdown)."""
        self._client.close()

    def __call__(self, connection: HTTPConnection) -> UpstreamIdentity:
        """The FastAPI dependency: the caller's identity, or 401/503 with the reason."""
        found = connection.scope.get("state", {}).get(_STATE)
        if isinstance(found, UpstreamIdentity):
            return found
        try:
            return self.verify_headers(connection.headers.getlist(HEADER))
        except AssertionInvalid as exc:
            raise HTTPException(exc.status, f"{exc.reason}: {exc.message}") from exc

    def verify_headers(self, values: list[str]) -> UpstreamIdentity:
        """The identity in the request's ``X-Hubgate-Assertion`` header (exactly one)."""
        if not values:
            raise AssertionInvalid("assertion_missing", "No X-Hubgate-Assertion header.")
        if len(values) > 1:
            raise AssertionInvalid("assertion_ambiguous", "More than one X-Hubgate-Assertion.")
        return self.verify(values[0])

    def verify(self, token: str) -> UpstreamIdentity:
        """The identity in ``token``; raises :class:`AssertionInvalid`.

        hubgate hands the same assertion to a caller's calls for half its life,
        so a token verified before is taken from a bounded cache while it has not
        expired (the same bytes pass the same checks), saving the ECDSA
        verification that is most of the cost (``bench/assertion.py``)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise AssertionInvalid("token_too_large", "The assertion is too large.")
        known = self._known(token)
        if known is not None:
            return known
        identity = self._verified(token)
        with self._lock:
            self._seen[token] = identity
            while len(self._seen) > _SEEN:
                self._seen.popitem(last=False)
        return identity

    def known(self, values: list[str]) -> UpstreamIdentity | None:
        """The identity of a header value verified before and not yet expired, without
        blocking (so the middleware skips the worker thread); else ``None``."""
        if len(values) != 1 or len(values[0]) > MAX_TOKEN_CHARS:
            return None
        return self._known(values[0])

    def _known(self, token: str) -> UpstreamIdentity | None:
        with self._lock:
            identity = self._seen.get(token)
            if identity is None or identity.expires_at <= self._clock() - self.leeway:
                return None
            self._seen.move_to_end(token)
            return identity

    def _verified(self, token: str) -> UpstreamIdentity:
        """Every check, in order."""
        key = self._key(_checked_header(token))
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
        except BadSignatureError as exc:
            raise AssertionInvalid("signature_invalid", "The signature does not verify.") from exc
        except (JoseError, ValueError) as exc:
            raise AssertionInvalid("token_malformed", "The assertion cannot be read.") from exc
        self._check_claims(claims)
        return _identity(claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = int(self._clock())
        registry = jwt.JWTClaimsRegistry(
            now=now, leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "values": self.audiences},
            exp={"essential": True}, iat={"essential": True},
            **_REQUIRED,
        )  # fmt: skip
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise AssertionInvalid(_claim_reason(exc), f"Claims refused: {exc}") from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME:
            raise AssertionInvalid("lifetime_too_long", "The assertion lives too long.")

    def _key(self, kid: str) -> ECKey:
        """The public key named ``kid``, from the key set fetched when the copy is
        stale or lacks ``kid``. One thread fetches while the others wait for its
        keys; the lock that guards the caches is never held across the network."""
        if self._fetch_due(kid):
            with self._fetching:
                if self._fetch_due(kid):
                    self._refresh()
        with self._lock:
            key, held = self._keys.get(kid), self._fetched_at > float("-inf")
        if key is None and not held:
            raise _unavailable("none fetched yet")
        if key is None:
            raise AssertionInvalid("key_unknown", "The assertion names no published key.")
        return key

    def _fetch_due(self, kid: str) -> bool:
        """Stale (``cache_seconds``) or without ``kid``, and the last try is at least
        ``refetch_seconds`` old: neither forged ``kid``s nor a hubgate that is down
        make the verifier fetch more often."""
        now = self._clock()
        with self._lock:
            if now - self._tried_at < self._refetch_seconds:
                return False
            return kid not in self._keys or now - self._fetched_at > self._cache_seconds

    def _refresh(self) -> None:
        """Fetch the key set; on failure keep the set held (hubgate may be
        restarting), and with none ever fetched fail closed with 503."""
        now = self._clock()
        with self._lock:
            self._tried_at = now
        try:
            keys = self._fetch()
        except AssertionInvalid:
            with self._lock:
                if self._fetched_at == float("-inf"):
                    raise
            return
        with self._lock:
            self._keys, self._fetched_at = keys, now

    def _fetch(self) -> dict[str, ECKey]:
        try:
            with self._client.stream("GET", self.jwks_url) as response:
                if response.status_code != 200:
                    raise _unavailable(f"the key set answered {response.status_code}")
                body = _bounded(response)
        except httpx.HTTPError as exc:
            raise _unavailable(f"the key set is unreachable ({type(exc).__name__})") from exc
        return parse_jwks(body)


def parse_jwks(body: bytes) -> dict[str, ECKey]:
    """``kid`` -> public key for each ES256 key in a JWK Set; other keys are
    skipped, and private parameters are never read."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _unavailable("the key set is not JSON") from exc
    listed = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(listed, list) or len(listed) > MAX_KEYS:
        raise _unavailable(f"the key set must list at most {MAX_KEYS} keys")
    return dict(filter(None, map(_public_key, listed)))


def _public_key(jwk: object) -> tuple[str, ECKey] | None:
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        return None
    if jwk.get("alg", ALGORITHM) != ALGORITHM or not isinstance(jwk.get("kid"), str):
        return None
    public = {name: jwk[name] for name in ("kty", "crv", "x", "y", "kid") if name in jwk}
    try:
        return jwk["kid"], ECKey.import_key(public)
    except (JoseError, ValueError, TypeError):
        return None


def _bounded(response: httpx.Response) -> bytes:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            raise _unavailable("the key set is too large")
    return bytes(body)


def _unavailable(why: str) -> AssertionInvalid:
    return AssertionInvalid("jwks_unavailable", f"hubgate's key set: {why}.", status=503)


def _checked_header(token: str) -> str:
    """The ``kid`` of a token whose header names ES256 and the assertion type;
    read before any key is touched, so no other algorithm gets near one."""
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise AssertionInvalid("token_malformed", "The assertion is not a JWS.") from exc
    if header.get("alg") != ALGORITHM:
        raise AssertionInvalid("algorithm_refused", f"Only {ALGORITHM} is accepted.")
    if header.get("typ") != TYPE:
        raise AssertionInvalid("type_refused", f"The token is not a {TYPE}.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AssertionInvalid("key_unknown", "The assertion names no key.")
    return kid


_CLAIM_REASONS = {"exp": "expired", "iss": "issuer_mismatch", "aud": "audience_mismatch"}


def _claim_reason(exc: JoseError) -> str:
    """``expired``, ``issuer_mismatch``, ``audience_mismatch``, else ``claims_invalid``."""
    if isinstance(exc, ClaimError) and not isinstance(exc, MissingClaimError):
        return _CLAIM_REASONS.get(exc.claim, "claims_invalid")
    return "claims_invalid"


def _identity(claims: dict[str, Any]) -> UpstreamIdentity:
    subject = claims.get("sub")
    if any(not isinstance(claims[name], str) for name in _STRINGS) or not (
        subject is None or isinstance(subject, str)
    ):
        raise AssertionInvalid("claims_invalid", "A claim is not a string.")
    return UpstreamIdentity(
        subject=subject, credential=claims["cred"], org=claims["org"], action=claims["act"],
        resource=claims["res"], token_id=claims["jti"], expires_at=int(claims["exp"]),
    )  # fmt: skip


def identity_of(connection: HTTPConnection) -> UpstreamIdentity:
    """The identity :class:`AssertionMiddleware` verified for this request."""
    found = connection.scope.get("state", {}).get(_STATE)
    if not isinstance(found, UpstreamIdentity):
        raise LookupError("no verified hubgate identity: is AssertionMiddleware installed?")
    return found


class AssertionMiddleware:
    """Starlette middleware: every HTTP request needs a valid assertion; the
    identity lands in ``request.state.hubgate_identity`` (:func:`identity_of`).
    Verification runs on a worker thread: it may fetch the key set."""

    def __init__(
        self, app: ASGIApp, verifier: AssertionVerifier, exempt: Collection[str] = ()
    ) -> None:
        self.app, self.verifier, self.exempt = app, verifier, frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        values = HTTPConnection(scope).headers.getlist(HEADER)
        try:
            identity = self.verifier.known(values) or await run_in_threadpool(
                self.verifier.verify_headers, values
            )
        except AssertionInvalid as exc:
            body = {"error": exc.reason, "message": exc.message}
            await JSONResponse(body, status_code=exc.status)(scope, receive, send)
            return
        scope.setdefault("state", {})[_STATE] = identity
        await self.app(scope, receive, send)
