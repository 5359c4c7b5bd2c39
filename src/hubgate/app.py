"""Builds the ASGI app from the routers; settings are read here, never at import."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from anyio import to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp

from hubgate import __version__, metrics
from hubgate.access import ORG_ROLE_NAMES, TEAM_ROLE_NAMES
from hubgate.config import Settings, load_settings
from hubgate.gate.asgi import Gate
from hubgate.gate.assertion import Minter
from hubgate.gate.usage import UsageCounter
from hubgate.jobs import background_jobs
from hubgate.logs import configure_logging
from hubgate.runtime import Runtime, build_runtime
from hubgate.sso import fetch_loop
from hubgate.web import api, errors, ops, pages, threads
from hubgate.web.api import docs as api_docs
from hubgate.web.direct import DirectRoutes
from hubgate.web.middleware import BodyLimit, Observe
from hubgate.web.protocols import (
    forward_auth,
    jwks,
    oidc_logout,
    providers,
    saml_logout,
    scim,
    sso,
    sso_keys,
)
from hubgate.web.security_headers import SecurityHeaders
from hubgate.worker import Job, Worker

__all__ = ["create_app"]

WEB = Path(__file__).parent / "web"
log = logging.getLogger("hubgate")


class _Hubgate(FastAPI):
    """FastAPI with :class:`SecurityHeaders` around the whole stack, outside the
    framework's own error middleware, so a 500 carries the headers too; inside it,
    the :class:`~hubgate.gate.asgi.Gate` answers forward-auth ahead of the rest."""

    def build_middleware_stack(self) -> ASGIApp:
        gate = Gate(
            super().build_middleware_stack(), self.state.runtime, self.state.usage,
            self.state.minter,
        )  # fmt: skip
        self.state.gate = gate
        return SecurityHeaders(gate)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run ``request_threads`` request threads (:mod:`hubgate.web.threads`) and as
    many of anyio's for FastAPI's plain ``def`` routes: no more than the pool's
    connections with its overflow, so threads never queue for a connection while
    holding a request; run the instance's background jobs (the mail sender, ...)
    on a worker thread of their own, and the token usage flusher on another, so a
    slow mail server never holds it back; at shutdown, flush the usage counted
    since its last run, close the connections kept to identity providers and
    retire this worker's live gauges (:func:`hubgate.metrics.forget_this_process`).

    What start-up built (about 200,000 objects: modules, routes, templates) lives
    as long as the process, so the first app of a process freezes it out of the
    garbage collector: a full collection over it took 60-250 ms here, a pause
    every request in flight would wait out (forward-auth's p99)."""
    _freeze_start_up()
    runtime: Runtime = app.state.runtime
    to_thread.current_default_thread_limiter().total_tokens = runtime.settings.request_threads
    threads.set_request_threads(runtime.settings.request_threads)
    jobs = background_jobs(runtime)
    app.state.worker = Worker(jobs) if jobs else None
    flusher = _usage_flusher(runtime, app.state.usage)
    for worker in (app.state.worker, flusher):
        if worker:
            worker.start()
    yield
    for worker in (app.state.worker, flusher):
        if worker:
            await to_thread.run_sync(worker.stop)
    await to_thread.run_sync(app.state.usage.flush, runtime.db)
    gate = getattr(app.state, "gate", None)
    if gate is not None:
        gate.close()
    fetch_loop.close_kept()
    runtime.db.engine.dispose()
    metrics.forget_this_process()


@functools.cache
def _freeze_start_up() -> None:
    """Once per process (cached): later apps of the same process (tests) stay
    collectable."""
    gc.collect()
    gc.freeze()


def _usage_flusher(runtime: Runtime, usage: UsageCounter) -> Worker:
    flush = partial(usage.flush, runtime.db)
    return Worker([Job("token-usage", flush, every=runtime.settings.usage_flush_seconds)])


def _minter(runtime: Runtime) -> Minter | None:
    """The signer of forward-auth's upstream assertions, when they are switched on."""
    settings = runtime.settings
    if not settings.upstream_assertion:
        return None
    return Minter(
        runtime.db, runtime.sealer, issuer=settings.base_url.rstrip("/"),
        lifetime=settings.upstream_assertion_seconds,
    )  # fmt: skip


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The hubgate ASGI app. ``runtime`` lets tests share one database."""
    runtime = runtime or build_runtime(settings or load_settings())
    configure_logging(json_logs=runtime.settings.json_logs)
    app = _Hubgate(
        lifespan=_lifespan,
        title="hubgate",
        version=__version__,
        summary="Organization single sign-on and access control for ML model platforms.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # hubgate.web.api.docs: offline, from a package
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.usage = UsageCounter(max_keys=runtime.settings.usage_max_keys)
    app.state.minter = _minter(runtime)
    app.state.templates = Jinja2Templates(directory=WEB / "templates")
    # The role choices of every form: the names hubgate.access owns.
    app.state.templates.env.globals.update(org_roles=ORG_ROLE_NAMES, team_roles=TEAM_ROLE_NAMES)
    errors.install(app)
    app.include_router(forward_auth.router)  # first: the proxy asks it on every request
    app.include_router(ops.router)
    # Then what IdPs and SCIM clients call in bulk: routes are matched in order,
    # and none of these paths (/sso/..., /scim/...) overlaps the API's /api/v1/...
    app.include_router(sso.router)
    app.include_router(providers.router)
    app.include_router(oidc_logout.router)
    app.include_router(saml_logout.router)
    app.include_router(scim.router)
    app.include_router(sso_keys.router)
    app.include_router(jwks.router)
    for router in api.ROUTERS:
        app.include_router(router)
    api_docs.install(app)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    app.include_router(pages.router)
    # Innermost: a sign-in's browser hops skip the routing and dependency solving
    # (hubgate.web.direct), inside the same body limit, metrics and headers.
    app.add_middleware(DirectRoutes, fastapi_app=app, prefix="/sso/", routes=sso.DIRECT)
    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    app.add_middleware(Observe)
    return app
