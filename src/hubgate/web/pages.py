"""Server-rendered pages (Jinja2). Forms post back with a CSRF token.

Order matters: fixed paths (``/login``, ``/settings/...``) come first, then the
org administration pages (``/{org}/members``, ``/{org}/teams/{team}``), and the
``/{org}`` and ``/{org}/{kinds}/{name}`` catch-alls last. ``app.py`` includes
this router after every other one. Org names never take a reserved word
(``orgs/names.py``), so no org hides a fixed path.
"""

from __future__ import annotations

from fastapi import APIRouter

from hubgate.web import (
    pages_account,
    pages_admin,
    pages_orgs,
    pages_recovery,
    pages_security,
    pages_setup,
    pages_sso,
)
from hubgate.web.pages_kit import render

__all__ = ["render", "router"]

router = APIRouter(include_in_schema=False)
router.include_router(pages_account.router)
router.include_router(pages_recovery.router)
router.include_router(pages_security.router)
router.include_router(pages_setup.router)
router.include_router(pages_admin.router)
router.include_router(pages_sso.router)
router.include_router(pages_orgs.router)
