"""Burndown of in-flight dossiers over successive reconcile runs, with a forecast of the drain date.

Each successful reconcile run records (as_of, in_flight) in its figures; the
chart plots them and fits a straight line through the last few points (least
squares). When the line goes down, the date where it reaches zero is the
forecast; when it does not, there is no forecast, and the report says why.
The chart is inline SVG: no script, no external asset, readable offline.

Example::

    points = [BurndownPoint(dt.datetime(2025, 8, 1), 40), BurndownPoint(dt.datetime(2025, 8, 8), 25)]
    forecast(points).drain_date     # datetime.datetime(2025, 8, 20, 4, 48)
    svg = burndown_svg(points, forecast(points))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

FIT_POINTS = 6  # the recent trend, not the whole history


@dataclass(frozen=True)
class BurndownPoint:
    as_of: dt.datetime
    in_flight: int


@dataclass(frozen=True)
class Forecast:
    drain_date: dt.datetime | None
    per_day: float | None  # dossiers finished per day (positive when draining)
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "drain_date": self.drain_date.isoformat(sep=" ", timespec="minutes") if self.drain_date else None,
            "per_day": round(self.per_day, 2) if self.per_day is not None else None,
            "note": self.note,
        }


def forecast(points: Sequence[BurndownPoint]) -> Forecast:
    """Least-squares line through the last FIT_POINTS points; where it reaches zero."""
    if points and points[-1].in_flight == 0:
        return Forecast(points[-1].as_of, None, "drained: no dossier in flight")
    recent = list(points[-FIT_POINTS:])
    if len({p.as_of for p in recent}) < 2:
        return Forecast(None, None, "too few reconcile runs at distinct times to forecast")
    origin = recent[0].as_of
    xs = [(p.as_of - origin).total_seconds() / 86400 for p in recent]
    ys = [float(p.in_flight) for p in recent]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread
    if slope >= 0:
        return Forecast(None, -slope, "in-flight dossiers are not decreasing: no drain date can be forecast")
    intercept = mean_y - slope * mean_x
    days = -intercept / slope
    drain = origin + dt.timedelta(days=days)
    if drain < recent[-1].as_of:
        drain = recent[-1].as_of
    return Forecast(drain, -slope, f"linear trend of the last {len(recent)} runs")


def burndown_svg(points: Sequence[BurndownPoint], prediction: Forecast, *, width: int = 680, height: int = 260) -> str:
    """The chart as an <svg> element (empty-state text when there are no points)."""
    left, right, top, bottom = 56, 20, 16, 40
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="60" role="img">'
            '<text x="8" y="30">no reconcile run yet</text></svg>'
        )
    start = points[0].as_of
    end = max([points[-1].as_of] + ([prediction.drain_date] if prediction.drain_date else []))
    span = max((end - start).total_seconds(), 86400.0)
    peak = max(1, max(p.in_flight for p in points))

    def x(moment: dt.datetime) -> float:
        return left + (width - left - right) * (moment - start).total_seconds() / span

    def y(count: float) -> float:
        return top + (height - top - bottom) * (1 - count / peak)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="in-flight dossiers over reconcile runs" style="font:11px sans-serif">',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#8a94a6"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{y(0):.1f}" stroke="#8a94a6"/>',
    ]
    for count in sorted({0, peak // 2, peak}):
        parts.append(f'<text x="{left - 6}" y="{y(count) + 4:.1f}" text-anchor="end">{count}</text>')
    for moment, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(moment):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}">'
            f"{escape(moment.strftime('%Y-%m-%d'))}</text>"
        )
    line = " ".join(f"{x(p.as_of):.1f},{y(p.in_flight):.1f}" for p in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#2b6cb0" stroke-width="2"/>')
    for p in points:
        parts.append(
            f'<circle cx="{x(p.as_of):.1f}" cy="{y(p.in_flight):.1f}" r="3" fill="#2b6cb0">'
            f"<title>{escape(p.as_of.isoformat(sep=' ', timespec='minutes'))}: {p.in_flight}</title></circle>"
        )
    if prediction.drain_date and points[-1].in_flight > 0:
        last = points[-1]
        parts.append(
            f'<line x1="{x(last.as_of):.1f}" y1="{y(last.in_flight):.1f}" x2="{x(prediction.drain_date):.1f}" '
            f'y2="{y(0):.1f}" stroke="#c05621" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{x(prediction.drain_date):.1f}" y="{y(0) - 8:.1f}" text-anchor="end" fill="#c05621">'
            f"forecast {escape(prediction.drain_date.strftime('%Y-%m-%d'))}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 6}" fill="#5b6577">in-flight dossiers (statuses 0-3) at each '
        "reconcile run, by the legacy clock</text></svg>"
    )
    return "".join(parts)
