"""Operations: liveness/readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from hubgate import metrics
from hubgate.sso import certificate_expiry
from hubgate.web.context import Rt

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(rt: Rt) -> JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        ok = rt.db.ping()
    except SQLAlchemyError:
        ok = False
    body = {"status": "ok" if ok else "unavailable", "database": ok}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
def prometheus(rt: Rt) -> Response:
    """The process's metrics, then the gauges read from the database at this scrape."""
    body = metrics.render() + certificate_expiry.render(rt.db)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
