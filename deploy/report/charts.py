"""Charts of the report: Vega-Lite specifications (altair) rendered to SVG offline by
vl-convert, so the page embeds them inline and needs no script or network when opened."""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import vl_convert as vlc

from deploy.report.figures import AlertSpan, Series

WIDTH, HEIGHT = 640, 170
SENTIMENT_COLORS = {
    "positive": "#2e9e44",
    "neutral": "#9aa3ad",
    "negative": "#d6423b",
    "unrated": "#d9dde2",
}
_ID = re.compile(r'\bid="([^"]+)"')


def time_format(length: float) -> str:
    return "%H:%M" if length <= 86400 else "%b %d %H:%M" if length <= 7 * 86400 else "%b %d"


def _x(fmt: str) -> alt.X:
    return alt.X("t:T", title=None, scale=alt.Scale(type="utc"), axis=alt.Axis(format=fmt, labelAngle=0, tickCount=8, labelOverlap=True))  # fmt: skip


def spec(series: Series, length: float) -> dict[str, Any]:
    """The Vega-Lite spec of one series (bars are stacked over [t, t + step))."""
    from ingest.events import parse_ts
    from processors.core.windows import iso

    values = [dict(p, t_end=iso(parse_ts(p["t"]) + series.step)) for p in series.points]
    y = alt.Y(
        "value:Q",
        title=series.y_title,
        axis=alt.Axis(format=".3~%" if series.percent else "~s"),
        stack="zero" if series.mark == "bar" else None,
    )
    if series.order:
        color = alt.Color(
            "series:N",
            title=None,
            sort=series.order,
            scale=alt.Scale(
                domain=series.order,
                range=[SENTIMENT_COLORS.get(s, "#4c78a8") for s in series.order],
            ),  # fmt: skip
        )
    else:
        color = alt.Color("series:N", title=None)
    base = alt.Chart(alt.Data(values=values))
    if series.mark == "bar":
        chart = base.mark_bar(orient="vertical").encode(
            x=_x(time_format(length)), x2="t_end:T", y=y, color=color
        )
    else:
        chart = base.mark_line(point=len(values) < 60).encode(
            x=_x(time_format(length)), y=y, color=color
        )
    return dict(  # type: ignore[no-any-return]
        chart.properties(width=WIDTH, height=HEIGHT)
        .configure_legend(orient="right")
        .configure_view(stroke=None)
        .to_dict()
    )


def timeline_spec(records: list[dict[str, Any]], length: float) -> dict[str, Any]:
    """Alerts as bars from firing to resolved (or to the period's edges)."""
    base = alt.Chart(alt.Data(values=records))
    x = alt.X("start:T", title=None, scale=alt.Scale(type="utc"), axis=alt.Axis(format=time_format(length), labelAngle=0))  # fmt: skip
    y = alt.Y("alert:N", title=None, axis=alt.Axis(labelLimit=320))
    color = alt.Color(
        "state:N",
        title=None,
        scale=alt.Scale(domain=["resolved", "firing at the end"], range=["#e39b2d", "#d6423b"]),
    )
    bars = base.mark_bar(height=12).encode(x=x, x2="end:T", y=y, color=color)
    ticks = base.mark_tick(thickness=2, size=18, color="#222").encode(x="start:T", y=y)
    height = 26 * len({r["alert"] for r in records}) + 10
    return dict(  # type: ignore[no-any-return]
        (bars + ticks)
        .properties(width=WIDTH - 140, height=height)
        .configure_legend(orient="bottom")
        .configure_view(stroke=None)
        .to_dict()
    )


def to_svg(vl_spec: dict[str, Any], prefix: str) -> str:
    """SVG text for inline use: ids prefixed so that several charts on one page never share
    a clip path id."""
    svg = vlc.vegalite_to_svg(vl_spec)
    svg = re.sub(r"^<\?xml[^>]*>\s*", "", svg)
    ids = set(_ID.findall(svg))
    for i in sorted(ids, key=len, reverse=True):
        svg = svg.replace(f'id="{i}"', f'id="{prefix}-{i}"').replace(f"url(#{i})", f"url(#{prefix}-{i})")  # fmt: skip
        svg = svg.replace(f'href="#{i}"', f'href="#{prefix}-{i}"')
    return svg


def render(series: Series, length: float) -> str:
    return to_svg(spec(series, length), _safe(series.key))


def render_timeline(spans: list[AlertSpan], records: list[dict[str, Any]], length: float) -> str:
    return to_svg(timeline_spec(records, length), "alerts") if spans else ""


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)
