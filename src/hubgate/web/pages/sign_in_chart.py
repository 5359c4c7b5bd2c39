"""The sign-in health chart of the SSO page, laid out here and drawn by the
template as SVG: no script and no ``style=`` (the CSP is ``default-src 'self'``),
only geometry attributes and classes of the static stylesheet.

Each bucket is a stack of segments, one per (outcome, connection, reason), each a
link to the audit log filtered on exactly the events it counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from hubgate.db.audit_sql import SIGN_IN_REFUSED, SIGNED_IN
from hubgate.sso import health

__all__ = ["HEIGHT", "WIDTH", "Chart", "Segment", "chart"]

WIDTH, HEIGHT = 600, 120
_Box = tuple[float, float, float, float]  # x, y, width, height
_LABEL = {"hour": "per hour, last 48 hours", "day": "per day, last 30 days"}


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    css: str  # bar-success | bar-refused
    href: str
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    period: str
    caption: str
    segments: list[Segment]
    total_success: int
    total_refused: int
    first: datetime
    last: datetime


def chart(
    org: str, span: health.Window, counts: list[health.Count], names: dict[int, str]
) -> Chart:
    """``counts`` (sorted by bucket) as stacked bars."""
    segments = [
        Segment(x, y, w, h, f"bar-{c.outcome}", audit_link(org, span, c), _title(span, c, names))
        for c, (x, y, w, h) in zip(counts, _boxes(span, counts), strict=True)
    ]
    return Chart(
        span.period, _LABEL[span.period], segments,
        sum(c.count for c in counts if c.outcome == "success"),
        sum(c.count for c in counts if c.outcome == "refused"),
        span.since, span.starts[-1],
    )  # fmt: skip


def _boxes(span: health.Window, counts: list[health.Count]) -> list[_Box]:
    """(x, y, width, height) of each count's segment: stacked in its bucket's slot,
    scaled so the busiest bucket fills the height."""
    slot = WIDTH / len(span.starts)
    index = {start: i for i, start in enumerate(span.starts)}
    totals: dict[datetime, int] = {}
    for c in counts:
        totals[c.start] = totals.get(c.start, 0) + c.count
    scale = HEIGHT / max(totals.values(), default=1)
    stacked: dict[datetime, float] = {}
    boxes = []
    for c in counts:
        height, below = c.count * scale, stacked.get(c.start, 0.0)
        stacked[c.start] = below + height
        x = index[c.start] * slot + slot * 0.15
        top = HEIGHT - below - height
        boxes.append((round(x, 2), round(top, 2), round(slot * 0.7, 2), round(height, 2)))
    return boxes


def audit_link(org: str, span: health.Window, count: health.Count) -> str:
    """The audit page filtered on the events one segment counts."""
    query: dict[str, str] = {"action": SIGNED_IN if count.outcome == "success" else SIGN_IN_REFUSED}
    if count.reason:
        query["reason"] = count.reason
    if count.connection_id is not None:
        query["connection"] = str(count.connection_id)
    query["since"] = count.start.isoformat()
    query["until"] = (count.start + span.width).isoformat()
    return f"/{org}/audit?{urlencode(query)}"


def _title(span: health.Window, count: health.Count, names: dict[int, str]) -> str:
    through = names.get(count.connection_id or 0, "an unknown connection")
    what = "signed in" if count.outcome == "success" else f"refused ({count.reason or 'no code'})"
    when = count.start.strftime("%Y-%m-%d %H:00" if span.period == "hour" else "%Y-%m-%d")
    return f"{count.count} {what} through {through}, {when} UTC"
