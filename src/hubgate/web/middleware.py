"""ASGI middleware: a trace id and metrics for every request, and bounds on bodies."""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hubgate import bounded_json, metrics
from hubgate.audit import new_trace_id

__all__ = ["BodyLimit", "Observe"]


class Observe:
    """Gives each request a trace id (``X-Trace-Id``) and records route metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = new_trace_id()
        scope.setdefault("state", {})["trace_id"] = trace
        started = time.perf_counter()
        status = 500

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                if not any(k == b"x-trace-id" for k, _ in message["headers"]):
                    message["headers"].append((b"x-trace-id", trace.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuses bodies over ``limit`` bytes with 413 before the app reads them, and a
    JSON body of the API nested deeper than :mod:`hubgate.bounded_json` allows with
    400 ``json_too_deep`` before FastAPI parses it. SCIM bodies are parsed (and
    bounded) by the SCIM routes, after the caller's token is checked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        scim = scope.get("path", "").startswith("/scim/")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit, scim=scim)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _too_large(send, self.limit, scim=scim)
                return
        if not scim and body and _is_json(scope):
            try:
                bounded_json.check(body, max_bytes=self.limit)
            except bounded_json.JsonRefused as exc:
                await _refuse(send, 400, {"error": exc.code, "message": exc.message})
                return
        await self.app(scope, _replay(body, receive), send)


def _is_json(scope: Scope) -> bool:
    """The media types FastAPI parses as JSON: ``application/json`` and ``+json``."""
    value: bytes = dict(scope["headers"]).get(b"content-type", b"")
    media = value.split(b";", maxsplit=1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _too_large(send: Send, limit: int, *, scim: bool = False) -> None:
    """413 as hubgate's JSON error, or as a SCIM Error document on ``/scim/``."""
    message = f"The request body is over {limit} bytes."
    document: dict[str, object] = (
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "413",
            "detail": message,
        }  # fmt: skip
        if scim
        else {"error": "body_too_large", "message": message}
    )
    await _refuse(send, 413, document, scim=scim)


async def _refuse(
    send: Send, status: int, document: dict[str, object], *, scim: bool = False
) -> None:
    payload = json.dumps(document).encode()
    media = b"application/scim+json" if scim else b"application/json"
    headers = [(b"content-type", media), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
