"""A few routes answered ahead of the framework's routing and dependency solving.

A browser's SSO sign-in is two hops through hubgate: ``GET /sso/{org}/start``
and, for OIDC, ``GET /sso/oidc/{id}/callback``. Each is a few queries on a worker
thread, and FastAPI's route matching, dependency solving and wrappers around
them cost a tenth of hubgate's CPU per sign-in. A :class:`DirectRoute` serves its
framework route's endpoint function itself, with the same :class:`Request`, the
same credential (:func:`hubgate.web.context.get_credential`) and the app's own
exception handlers, so the pages, redirects and errors are the route's own.

It takes a request only when the route's parameters are plainly valid; anything
else (a malformed id, an overlong address) goes on to the framework's route, so
validation errors stay the framework's. The middleware outside it (trace id,
metrics, body limit, security headers) is the same for both ways in.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from hubgate.runtime import Runtime
from hubgate.web.context import get_credential, get_runtime
from hubgate.web.threads import on_request_thread

__all__ = ["DirectRoute", "DirectRoutes", "Served", "serve_endpoint"]

Served = Awaitable[Response]
Handler = Callable[[Request], Served | None]
"""Reads a matched request's parameters: the response to come, or ``None`` when
they are not plainly valid (the framework's route answers instead)."""

_CALL = "hubgate.direct"


@dataclass(frozen=True, slots=True)
class DirectRoute:
    route: APIRoute
    """The framework's route: its path and methods match, and it names the request
    in metrics (``scope["route"]``) as when the framework serves it."""
    handle: Handler

    def __post_init__(self) -> None:
        """A dependency added to the route later (a rate limit, a check) would be
        skipped here without a word: refuse to start instead."""
        extra = _dependencies(self.route.dependant) - _RESOLVED
        if extra or self.route.dependencies:
            raise TypeError(f"{self.route.path} has dependencies a direct route skips: {extra}")


_RESOLVED = frozenset({get_runtime, get_credential})
"""What :func:`serve_endpoint` resolves itself."""


def _dependencies(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.add(sub.call)
        found |= _dependencies(sub)
    return found


def serve_endpoint(
    request: Request, endpoint: Callable[..., Response | Awaitable[Response]], **params: Any
) -> Served:
    """What FastAPI does for a route taking ``request``, ``rt`` and ``credential``:
    resolve the credential, then run the endpoint, a plain ``def`` one on a request
    thread."""

    async def served() -> Response:
        rt: Runtime = request.app.state.runtime
        credential = await get_credential(request, rt)
        arguments = {"request": request, "rt": rt, "credential": credential, **params}
        if inspect.iscoroutinefunction(endpoint):
            answer: Response = await endpoint(**arguments)
            return answer
        plain = cast(Callable[..., Response], endpoint)
        return await on_request_thread(functools.partial(plain, **arguments))

    return served()


class DirectRoutes:
    """ASGI middleware serving ``routes`` under ``prefix`` itself; the rest goes on
    to ``app``. Errors the endpoints raise go to ``fastapi_app``'s exception
    handlers, as inside the framework."""

    def __init__(
        self, app: ASGIApp, *, fastapi_app: FastAPI, prefix: str, routes: Sequence[DirectRoute]
    ) -> None:
        if fastapi_app.router.dependencies:
            raise TypeError("The app has dependencies of its own, which direct routes skip.")
        self.app = app
        self.prefix = prefix
        self.routes = tuple(routes)
        handlers = {
            key: handler
            for key, handler in fastapi_app.exception_handlers.items()
            if key not in (500, Exception)  # the server error middleware's, outside
        }
        self._handled = ExceptionMiddleware(_respond, handlers=handlers, debug=fastapi_app.debug)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = self._served(scope) if scope["type"] == "http" else None
        if served is None:
            await self.app(scope, receive, send)
            return
        scope[_CALL] = served
        await self._handled(scope, receive, send)

    def _served(self, scope: Scope) -> Served | None:
        if not scope["path"].startswith(self.prefix):
            return None
        for direct in self.routes:
            match, child = direct.route.matches(scope)
            if match is Match.FULL:
                served = direct.handle(Request({**scope, **child}))
                if served is not None:
                    scope.update(child)
                return served
            if match is Match.PARTIAL:
                return None  # another method: the framework answers 405
        return None


async def _respond(scope: Scope, receive: Receive, send: Send) -> None:
    served: Served = scope.pop(_CALL)
    response = await served
    await response(scope, receive, send)
