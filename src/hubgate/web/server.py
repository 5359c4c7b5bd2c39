"""How ``hubgate serve`` runs uvicorn: its httptools protocol with a bound on the
request head (the request line and the header fields).

uvicorn bounds a head only with h11 (``h11_max_incomplete_event_size``); with
httptools, which it prefers, a request with 32 MB of headers is read whole and
handed to the app. :class:`BoundedHttpTools` reads the same setting and answers a
larger head with 431 (RFC 6585 §5), closing the connection, before the app sees
it. What it buffers meanwhile is at most the bound plus one read from the socket.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEAD_BYTES", "BoundedHttpTools", "HeadTooLarge"]

MAX_HEAD_BYTES = 64 * 1024
_REFUSAL = b"Request header fields too large."


class HeadTooLarge(Exception):
    """The request line and headers are over the bound."""


class BoundedHttpTools(HttpToolsProtocol):
    """httptools, with heads over ``config.h11_max_incomplete_event_size`` refused."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_head = config.h11_max_incomplete_event_size or MAX_HEAD_BYTES
        self.head_open, self.head_counted, self.head_received = False, 0, 0
        self.head_too_large = False

    def data_received(self, data: bytes) -> None:
        """Counts what arrives while a head is open (from the read after the one it
        began in), so a header httptools is still buffering is bounded too."""
        counting = self.head_open
        super().data_received(data)
        if counting and self.head_open:
            self.head_received += len(data)
            if self.head_received > self.max_head and not self.transport.is_closing():
                self.head_too_large = True
                self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_open, self.head_counted, self.head_received = True, 0, 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_open = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self.head_counted += size
        if self.head_counted > self.max_head:
            self.head_too_large = True
            raise HeadTooLarge()  # httptools stops; uvicorn answers send_400_response

    def send_400_response(self, msg: str) -> None:
        if not self.head_too_large:
            super().send_400_response(msg)
            return
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL)
        )
        self.transport.close()
