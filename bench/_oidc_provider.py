"""A small OpenID Provider on loopback for ``bench/oidc.py``'s sign-in figure.

It serves discovery, its JWKS, an authorization endpoint that signs a new user
in at once (the code bound to the request's PKCE S256 challenge, nonce and
redirect URI; RFC 9207 ``iss`` in the answer) and a token endpoint that checks
the client's ``client_secret_basic`` credentials and the code verifier and signs
a real RS256 id_token with joserfc, claims included (so no userinfo request).

It is not how hubgate is tested (tests/e2e runs the real npm oidc-provider); it
is here so that the figure measures hubgate's callback, not a provider's login
pages. It runs in its own process (``python bench/_oidc_provider.py PORT``, the
client secret in ``BENCH_OIDC_CLIENT_SECRET``) so it does not share the
benchmark client's interpreter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

__all__ = ["CLIENT_ID", "running_provider"]

CLIENT_ID = "hubgate-bench"
SECRET_VARIABLE = "BENCH_OIDC_CLIENT_SECRET"
GROUPS = [f"ml-platform-group-{n}" for n in range(10)]


class Provider:
    """The provider's state: its key, and the codes it issued (used once)."""

    def __init__(self, issuer: str, client_secret: str) -> None:
        self.issuer = issuer
        self.client_secret = client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench-1"}, private=True)
        self.jwks = json.dumps(KeySet([self.key]).as_dict(private=False)).encode()
        self.codes: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        self.users = 0

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
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.users += 1
            self.codes[code] = {**query, "sub": f"bench-user-{self.users}"}
        answer = {"code": code, "state": query.get("state", ""), "iss": self.issuer}
        return f"{query['redirect_uri']}?{urlencode(answer)}"

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        if not self._client_authenticated(authorization):
            return 401, {"error": "invalid_client"}
        with self.lock:
            request = self.codes.pop(form.get("code", ""), None)
        if request is None or not _verifier_matches(form, request):
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

    def _id_token(self, request: dict[str, str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": request["sub"], "aud": CLIENT_ID,
            "nonce": request["nonce"], "iat": now, "exp": now + 300, "auth_time": now,
            "email": f"{request['sub']}@bench.example", "email_verified": True,
            "name": "Bench User", "groups": GROUPS,
        }  # fmt: skip
        header = {"alg": "RS256", "kid": "bench-1"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])


def _verifier_matches(form: dict[str, str], request: dict[str, str]) -> bool:
    """RFC 7636 §4.6 (S256), and the redirect URI of the authorization request."""
    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    same_uri = form.get("redirect_uri") == request["redirect_uri"]
    return challenge == request["code_challenge"] and same_uri


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider: Provider

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/.well-known/openid-configuration":
            self._send(200, self.provider.discovery())
        elif parts.path == "/jwks":
            self._send(200, self.provider.jwks)
        elif parts.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            location = self.provider.authorize(query)
            self._send(302 if location else 400, b"", location)
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(size).decode()).items()}
        if urlsplit(self.path).path != "/token":
            self._send(404, b"{}")
            return
        status, body = self.provider.token(form, self.headers.get("authorization", ""))
        self._send(status, json.dumps(body).encode())

    def _send(self, status: int, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the benchmark prints its own figures."""


def serve(port: int, client_secret: str) -> None:
    Handler.provider = Provider(f"http://127.0.0.1:{port}", client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


@contextmanager
def running_provider(port: int, client_secret: str) -> Iterator[str]:
    """The provider in a child process on ``port``; yields its issuer, always stopped."""
    env = {**os.environ, SECRET_VARIABLE: client_secret}
    process = subprocess.Popen([sys.executable, __file__, str(port)], env=env)
    issuer = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, issuer)
        yield issuer
    finally:
        process.terminate()
        process.wait(timeout=10)


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
    serve(int(sys.argv[1]), os.environ[SECRET_VARIABLE])
