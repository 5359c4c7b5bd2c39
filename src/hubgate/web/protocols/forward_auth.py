"""Forward-auth: ``GET /auth/check`` for nginx ``auth_request``, Traefik
``forwardAuth`` and Caddy ``forward_auth``.

The answer is computed by :mod:`hubgate.gate`, which serves this path ahead of
the framework (:class:`hubgate.gate.asgi.Gate`); the route here gives it its
place in the OpenAPI document and answers the same way when the app runs without
the gate in front. :mod:`hubgate.gate.paths` maps the original request to a
resource and action. The answer is 200 with ``X-Hubgate-User`` and
``X-Hubgate-Org``, 401 (no or bad credential) or 403, each refusal with
``X-Hubgate-Reason``; proxies understand only these codes, so an unknown resource
answers 403 ``not_found`` too.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hubgate.gate.asgi import PATH, Gate, GateRequest

__all__ = ["router"]

router = APIRouter(tags=["forward-auth"])


@router.get(PATH, include_in_schema=True)
async def check(request: Request) -> Response:
    """Answer the proxy: may this credential make the original request?"""
    gate: Gate = request.app.state.gate
    answer = await gate.answer(GateRequest(request.scope["headers"], gate.host_header))
    raw = answer.headers + gate.assertion(answer)
    headers = {name.decode(): value.decode("latin-1") for name, value in raw}
    return Response(status_code=answer.status, headers=headers)
