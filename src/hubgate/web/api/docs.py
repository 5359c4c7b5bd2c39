"""The API's interactive documentation, served from hubgate alone.

Swagger UI comes from the ``fastapi-offline`` package, which ships its files
(FastAPI's default page loads them from a CDN and is blank offline); the page
and the script that starts it are hubgate's own, so the page needs no inline
script and nothing from another site, favicon included.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install"]

ASSETS = "/api/v1/docs/assets"

router = APIRouter(include_in_schema=False)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>hubgate API</title>
  <link rel="icon" type="image/png" href="{ASSETS}/favicon.png">
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi="/api/v1/openapi.json"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/api/v1/docs")
def docs() -> HTMLResponse:
    return HTMLResponse(_PAGE)


def install(app: FastAPI) -> None:
    """The page and Swagger UI's files (read-only, from the installed package)."""
    app.include_router(router)
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="api-docs-assets")
