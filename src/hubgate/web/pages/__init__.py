"""Server-rendered pages (Jinja2). Forms post back with a CSRF token.

Order matters: fixed paths (``/login``, ``/settings/...``) come first, then the
org administration pages (``/{org}/members``, ``/{org}/teams/{team}``), and the
``/{org}`` and ``/{org}/{kinds}/{name}`` catch-alls last. ``app.py`` includes
this router after every other one. Org names never take a reserved word
(``hubgate/names.py``), so no org hides a fixed path.
"""

from __future__ import annotations

from fastapi import APIRouter

from hubgate.web.pages import (
    account,
    admin,
    audit_streams,
    joining,
    orgs,
    recovery,
    security,
    setup,
    sso,
)
from hubgate.web.pages.kit import render

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(account.router)
router.include_router(recovery.router)
router.include_router(security.router)
router.include_router(setup.router)
router.include_router(admin.router)
router.include_router(audit_streams.router)
router.include_router(joining.router)
router.include_router(sso.router)
router.include_router(orgs.router)
