"""A GitHub of the tests' own, on loopback HTTP, speaking the documented OAuth
app endpoints the way GitHub Enterprise Server lays them out under its base URL:
``POST /login/oauth/access_token`` (codes bound to their PKCE challenge and
redirect URI, errors as JSON with status 200, JSON only when asked with
``Accept: application/json``), ``GET /api/v3/user`` and ``GET /api/v3/user/emails``
with ``verified`` and ``primary`` flags. The user "signs in" by
:meth:`GithubServer.authorize`, which reads hubgate's authorization URL."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CLIENT", "SECRET", "GithubServer", "running_github"]

CLIENT, SECRET = "Iv1.hubgate", "gh-s3cret"


@dataclass
class GithubServer:
    base_url: str = ""
    user: dict[str, Any] = field(
        default_factory=lambda: {"id": 583231, "login": "octocat", "name": "The Octocat"}
    )
    emails: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"email": "octo@example.com", "primary": True, "verified": True},
            {"email": "cat@example.org", "primary": False, "verified": False},
        ]
    )
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def authorize(self, url: str) -> dict[str, str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert url.startswith(f"{self.base_url}/login/oauth/authorize?"), url
        assert query["client_id"] == CLIENT and query["code_challenge_method"] == "S256"
        assert set(query["scope"].split()) == {"read:user", "user:email"}
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        return {"code": code, "state": query["state"]}

    def token(self, form: dict[str, str], accept: str) -> tuple[str, bytes]:
        request = self.codes.pop(form.get("code", ""), None)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT, SECRET):
            answer = {"error": "incorrect_client_credentials"}
        elif request is None or request["code_challenge"] != challenge:
            answer = {"error": "bad_verification_code"}
        elif request["redirect_uri"] != form.get("redirect_uri"):
            answer = {"error": "redirect_uri_mismatch"}
        else:
            token = "gho_" + secrets.token_urlsafe(24)
            self.tokens.add(token)
            answer = {"access_token": token, "token_type": "bearer", "scope": "read:user"}
        if accept != "application/json":  # GitHub's default: form-encoded
            return "application/x-www-form-urlencoded", "&".join(
                f"{k}={v}" for k, v in answer.items()
            ).encode()
        return "application/json", json.dumps(answer).encode()


def _handler(server: GithubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            server.requests.append(f"POST {self.path}")
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path != "/login/oauth/access_token":
                return self._send(404, "application/json", b'{"message": "Not Found"}')
            content_type, body = server.token(form, self.headers.get("Accept", ""))
            return self._send(200, content_type, body)

        def do_GET(self) -> None:
            server.requests.append(f"GET {self.path}")
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if bearer not in server.tokens:
                return self._send(401, "application/json", b'{"message": "Bad credentials"}')
            answers = {"/api/v3/user": server.user, "/api/v3/user/emails": server.emails}
            if self.path not in answers:
                return self._send(404, "application/json", b'{"message": "Not Found"}')
            return self._send(200, "application/json", json.dumps(answers[self.path]).encode())

    return Handler


@contextmanager
def running_github() -> Iterator[GithubServer]:
    state = GithubServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
