"""A small OpenID Provider on loopback for ``bench/oidc.py``'s sign-in figures.

It serves discovery, its JWKS, an authorization endpoint that signs the person in
at once (the code bound to the request's PKCE S256 challenge, nonce and redirect
URI; RFC 9207 ``iss`` in the answer) and a token endpoint that checks the client's
``client_secret_basic`` credentials and the code verifier and signs a real RS256
id_token with joserfc, claims included (so no userinfo request).

Who signs in: the authorization request's ``login_hint`` names an account of the
accounts file (``BENCH_OIDC_ACCOUNTS``, a JSON object of email -> groups), as a
person would type their name at a login page; without one, a new person signs in
each time.

It is not how hubgate is tested (tests/e2e runs the real npm oidc-provider); it
is here so that the figure measures hubgate, not a provider's login pages. It
runs in its own process (``python bench/_oidc_provider.py PORT``, the client
secret in ``BENCH_OIDC_CLIENT_SECRET``) on uvicorn with a bare ASGI callable: the
first version, on ``http.server``, cost more CPU per sign-in than hubgate's own
callback on this 2-core machine, and it wrote each answer's headers and body in
two TCP segments, so a client reusing its connection waited 40 ms for the
delayed ACK (Nagle) on every request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["ACCOUNTS_VARIABLE", "CLIENT_ID", "running_provider"]

CLIENT_ID = "hubgate-bench"
SECRET_VARIABLE = "BENCH_OIDC_CLIENT_SECRET"
ACCOUNTS_VARIABLE = "BENCH_OIDC_ACCOUNTS"
LATENCY_VARIABLE = "BENCH_OIDC_TOKEN_SECONDS"
GROUPS = [f"ml-platform-group-{n}" for n in range(10)]
_CODE_SECONDS = 60

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Provider:
    """The provider's state: its key, its accounts, and the codes it issued (used once)."""

    def __init__(self, issuer: str, client_secret: str, accounts: dict[str, list[str]]) -> None:
        self.issuer = issuer
        self.client_secret = client_secret
        self.accounts = accounts
        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench-1"}, private=True)
        self.jwks = json.dumps(KeySet([self.key]).as_dict(private=False)).encode()
        self.codes: dict[str, tuple[float, dict[str, Any]]] = {}
        self.strangers = 0

    def discovery(self) -> bytes:
        return json.dumps({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_response_iss_parameter_supported": True,
        }).encode()  # fmt: skip

    def authorize(self, query: dict[str, str]) -> str | None:
        """The redirect back to the client with a code, or None for a bad request."""
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return None
        person = self._person(query.get("login_hint"))
        if person is None:
            return None
        code = secrets.token_urlsafe(24)
        self.codes[code] = (time.monotonic() + _CODE_SECONDS, {**query, **person})
        answer = {"code": code, "state": query.get("state", ""), "iss": self.issuer}
        return f"{query['redirect_uri']}?{urlencode(answer)}"

    def _person(self, hint: str | None) -> dict[str, Any] | None:
        if hint is None:
            self.strangers += 1
            sub = f"bench-user-{self.strangers}"
            return {"sub": sub, "email": f"{sub}@bench.example", "groups": GROUPS}
        groups = self.accounts.get(hint)
        return None if groups is None else {"sub": hint, "email": hint, "groups": groups}

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        if not self._client_authenticated(authorization):
            return 401, {"error": "invalid_client"}
        expires, request = self.codes.pop(form.get("code", ""), (0.0, {}))
        if expires < time.monotonic() or not _verifier_matches(form, request):
            return 400, {"error": "invalid_grant"}
        return 200, {
            "id_token": self._id_token(request),
            "access_token": "at",
            "token_type": "Bearer",
        }

    def _client_authenticated(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        client, _, secret = base64.b64decode(encoded).decode().partition(":")
        return unquote_plus(client) == CLIENT_ID and unquote_plus(secret) == self.client_secret

    def _id_token(self, request: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": request["sub"], "aud": CLIENT_ID,
            "nonce": request["nonce"], "iat": now, "exp": now + 300, "auth_time": now,
            "email": request["email"], "email_verified": True,
            "name": request["email"].split("@")[0], "groups": request["groups"],
        }  # fmt: skip
        header = {"alg": "RS256", "kid": "bench-1"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])


def _verifier_matches(form: dict[str, str], request: dict[str, Any]) -> bool:
    """RFC 7636 §4.6 (S256), and the redirect URI of the authorization request."""
    if not request:
        return False
    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    same_uri = form.get("redirect_uri") == request["redirect_uri"]
    return challenge == request["code_challenge"] and same_uri


class App:
    """The provider's HTTP endpoints as a bare ASGI callable (no framework)."""

    def __init__(self, provider: Provider, latency: float = 0.0) -> None:
        self.provider = provider
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/token":
            if self.latency:
                await asyncio.sleep(self.latency)
            form = dict(parse_qsl((await _body(receive)).decode()))
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode()
            status, answer = self.provider.token(form, authorization)
            await _send(send, status, json.dumps(answer).encode())
        elif path == "/.well-known/openid-configuration":
            await _send(send, 200, self.provider.discovery())
        elif path == "/jwks":
            await _send(send, 200, self.provider.jwks)
        elif path == "/authorize":
            query = dict(parse_qsl(scope["query_string"].decode()))
            location = self.provider.authorize(query)
            await _send(send, 302 if location else 400, b"", location)
        else:
            await _send(send, 404, b"{}")


async def _body(receive: Receive) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def _send(send: Send, status: int, body: bytes, location: str | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if location:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(port: int, client_secret: str, accounts_path: str | None) -> None:
    import uvicorn

    accounts: dict[str, list[str]] = {}
    if accounts_path:
        with open(accounts_path, encoding="utf-8") as file:
            accounts = json.load(file)
    latency = float(os.environ.get(LATENCY_VARIABLE) or 0)
    app = App(Provider(f"http://127.0.0.1:{port}", client_secret, accounts), latency)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        lifespan="off", server_header=False, date_header=False,
    )  # fmt: skip


@contextmanager
def running_provider(
    port: int,
    client_secret: str,
    accounts: dict[str, list[str]] | None = None,
    token_latency: float = 0.0,
) -> Iterator[str]:
    """The provider in a child process on ``port``, knowing ``accounts`` (email ->
    groups), its token endpoint answering ``token_latency`` seconds late (as one
    across an ocean does, without spending CPU); yields its issuer, always stopped."""
    with _accounts_file(accounts or {}) as path:
        env = {
            **os.environ, SECRET_VARIABLE: client_secret, ACCOUNTS_VARIABLE: path,
            LATENCY_VARIABLE: str(token_latency),
        }  # fmt: skip
        process = subprocess.Popen([sys.executable, __file__, str(port)], env=env)
        issuer = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, issuer)
            yield issuer
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def _accounts_file(accounts: dict[str, list[str]]) -> Iterator[str]:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as file:
        json.dump(accounts, file)
        file.flush()
        yield file.name


def _wait_ready(process: subprocess.Popen[bytes], issuer: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bench provider exited with {process.returncode}")
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the bench provider did not answer in 30s")


if __name__ == "__main__":
    serve(int(sys.argv[1]), os.environ[SECRET_VARIABLE], os.environ.get(ACCOUNTS_VARIABLE))
