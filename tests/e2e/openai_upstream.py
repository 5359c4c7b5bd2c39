"""A small OpenAI-compatible model server, standing in for vLLM in end-to-end tests.

It serves what the official ``openai`` client calls: ``GET /v1/models`` and
``POST /v1/chat/completions``, plain or streamed (``"stream": true``:
``text/event-stream`` with ``data: {...}`` chunks and ``data: [DONE]``).

A streamed answer sends its first chunk, then waits for :attr:`release` before
the rest: a test sets it only once its client has received that first chunk
through the proxy, so a proxy that buffers the stream keeps the first chunk
back, the upstream waits in vain, and :attr:`OpenAIUpstream.streams` records
that it was not released. No clock is read by the test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.e2e.conftest import UpstreamRequest, read_request, serving

__all__ = ["MODEL", "OpenAIUpstream", "openai_upstream"]

MODEL = "llama"
RELEASE_SECONDS = 60.0  # a ceiling for a test that never releases, not a wait
FIRST, REST = "Hello", ", world"


@dataclass
class OpenAIUpstream:
    """The server's address (``host:port``), what reached it, and the stream gate."""

    address: str = ""
    requests: list[UpstreamRequest] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    streams: list[bool] = field(default_factory=list)
    """Per streamed answer: whether :attr:`release` was set before the ceiling."""


def _chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-e2e", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }  # fmt: skip


def _completion() -> dict[str, Any]:
    message = {"role": "assistant", "content": FIRST + REST}
    return {
        "id": "chatcmpl-e2e", "object": "chat.completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }  # fmt: skip


_MODELS = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                      "owned_by": "acme"}]}  # fmt: skip


def _handler(upstream: OpenAIUpstream) -> type[BaseHTTPRequestHandler]:
    class OpenAICompatible(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            request, _ = read_request(self)
            upstream.requests.append(request)
            if request.path == "/v1/models":
                self._json(200, _MODELS)
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            request, body = read_request(self)
            upstream.requests.append(request)
            if request.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": "not found"}})
            elif json.loads(body).get("stream"):
                self._stream()
            else:
                self._json(200, _completion())

        def _json(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _stream(self) -> None:
            """First chunk, then wait for the test, then the rest (chunked encoding)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._event(_chunk({"role": "assistant", "content": FIRST}))
            upstream.streams.append(upstream.release.wait(RELEASE_SECONDS))
            self._event(_chunk({"content": REST}))
            self._event(_chunk({}, finish="stop"))
            self._send(b"data: [DONE]\n\n")
            self._send(b"")

        def _event(self, document: dict[str, Any]) -> None:
            self._send(f"data: {json.dumps(document)}\n\n".encode())

        def _send(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet: the test reads ``requests`` instead."""

    return OpenAICompatible


@contextmanager
def openai_upstream() -> Iterator[OpenAIUpstream]:
    """The OpenAI-compatible server in a thread; a stream still waiting is released
    on the way out, so the server stops at once."""
    upstream = OpenAIUpstream()
    with serving(_handler(upstream), "openai-upstream") as address:
        upstream.address = address
        try:
            yield upstream
        finally:
            upstream.release.set()
