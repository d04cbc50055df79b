"""What ``ripple backtest`` prints: the stream alerts of a results set as firing episodes.

Pure (rows in, text or JSON out), so the summary is testable apart from any replay. The
input is the results rows of a replay (or of ``processors.harness``); only the
``"metric":"alert"`` rows matter for the episodes (METRICS.md: labels ``alertname`` plus
the alert's two labels, window ``event``, ``window_start`` = T in event time, value 1 fire
/ 0 resolve). The period is read from the 1m window rows, so a replay through Kafka and an
in-process run of the same input give the same summary.

An episode runs from a fire to the next resolve of the same alert and label set; one with
no resolve is "firing at end" and its duration runs to the period's end. A resolve with
no fire before it, or a second fire while firing, cannot come from the stream detector
(it emits transitions only); they are ignored rather than invented into episodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.core.windows import iso

Labels = tuple[tuple[str, str], ...]  # the alert's labels without alertname, in row order


def parse_iso(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@dataclass(frozen=True)
class Episode:
    fired: int
    resolved: int | None  # None: still firing at the end of the period
    seconds: int  # resolved - fired, or period end - fired while still firing


@dataclass
class Series:
    """One alert and label set over the period."""

    alertname: str
    labels: Labels
    episodes: list[Episode] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, Labels]:
        return (self.alertname, self.labels)

    @property
    def fires(self) -> int:
        return len(self.episodes)

    @property
    def firing_seconds(self) -> int:
        return sum(e.seconds for e in self.episodes)

    @property
    def firing_at_end(self) -> bool:
        return bool(self.episodes) and self.episodes[-1].resolved is None

    @property
    def first_fire(self) -> int | None:
        return self.episodes[0].fired if self.episodes else None


@dataclass
class Backtest:
    name: str  # what the rules were (the config's path)
    period: tuple[int, int] | None  # [start, end) of the 1m windows; None without rows
    series: list[Series]  # sorted by alertname, then labels

    @property
    def fires(self) -> int:
        return sum(s.fires for s in self.series)


def _period(rows: list[dict[str, Any]]) -> tuple[int, int] | None:
    minute = [r for r in rows if r["window"] == "1m"] or rows
    if not minute:
        return None
    return (
        min(parse_iso(r["window_start"]) for r in minute),
        max(parse_iso(r["window_end"]) for r in minute),
    )


def summarise(rows: Iterable[dict[str, Any]], name: str = "") -> Backtest:
    """Episodes per alert and label set of a results set."""
    rows = list(rows)
    period = _period(rows)
    transitions: dict[tuple[str, Labels], list[tuple[int, int]]] = {}
    for r in rows:
        if r["metric"] != "alert":
            continue
        labels = dict(r["labels"])
        alertname = labels.pop("alertname")
        key = (alertname, tuple(labels.items()))
        transitions.setdefault(key, []).append((parse_iso(r["window_start"]), int(r["value"])))
    end = period[1] if period else None
    series = []
    for (alertname, labelset), ts in sorted(transitions.items()):
        s = Series(alertname, labelset)
        open_at: int | None = None
        for t, value in sorted(ts):
            if value == 1 and open_at is None:
                open_at = t
            elif value == 0 and open_at is not None:
                s.episodes.append(Episode(open_at, t, t - open_at))
                open_at = None
        if open_at is not None:
            s.episodes.append(Episode(open_at, None, max(0, (end or open_at) - open_at)))
        series.append(s)
    return Backtest(name, period, series)


# ---------------------------------------------------------------- JSON


def _episode_json(e: Episode) -> dict[str, Any]:
    return {
        "fired": iso(e.fired),
        "resolved": None if e.resolved is None else iso(e.resolved),
        "seconds": e.seconds,
        "firing_at_end": e.resolved is None,
    }


def _period_json(period: tuple[int, int] | None) -> dict[str, str] | None:
    return None if period is None else {"start": iso(period[0]), "end": iso(period[1])}


def to_json(bt: Backtest) -> dict[str, Any]:
    return {
        "config": bt.name,
        "period": _period_json(bt.period),
        "fires": bt.fires,
        "alerts": [
            {
                "alertname": s.alertname,
                "labels": dict(s.labels),
                "fires": s.fires,
                "firing_seconds": s.firing_seconds,
                "firing_at_end": s.firing_at_end,
                "first_fire": None if s.first_fire is None else iso(s.first_fire),
                "episodes": [_episode_json(e) for e in s.episodes],
            }
            for s in bt.series
        ],
    }


@dataclass(frozen=True)
class Pair:
    """One alert and label set under both rule sets (an empty Series where one never fired)."""

    a: Series
    b: Series


def pair(a: Backtest, b: Backtest) -> list[Pair]:
    sa = {s.key: s for s in a.series}
    sb = {s.key: s for s in b.series}
    return [
        Pair(sa.get(k) or Series(*k), sb.get(k) or Series(*k))
        for k in sorted(sa.keys() | sb.keys())
    ]


def compare_json(a: Backtest, b: Backtest) -> dict[str, Any]:
    def first(s: Series) -> str | None:
        return None if s.first_fire is None else iso(s.first_fire)

    table = [
        {
            "alertname": p.a.alertname,
            "labels": dict(p.a.labels),
            "fires_a": p.a.fires,
            "fires_b": p.b.fires,
            "first_fire_a": first(p.a),
            "first_fire_b": first(p.b),
            "firing_seconds_a": p.a.firing_seconds,
            "firing_seconds_b": p.b.firing_seconds,
        }
        for p in pair(a, b)
    ]
    return {"a": to_json(a), "b": to_json(b), "table": table}


# ---------------------------------------------------------------- text


def duration(seconds: int) -> str:
    """``45s``, ``14m``, ``2h 05m``, ``3d 4h``: minutes matter for alerts, seconds rarely."""
    if seconds < 60:
        return f"{seconds}s"
    m = seconds // 60
    if m < 60:
        return f"{m}m" + (f" {seconds % 60:02d}s" if seconds % 60 else "")
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h}h"


def label_text(alertname: str, labels: Labels) -> str:
    return " ".join([alertname, *(f"{k}={v}" for k, v in labels)])


def episode_line(e: Episode) -> str:
    if e.resolved is None:
        return f"fired {iso(e.fired)}  firing at end ({duration(e.seconds)} so far)"
    return f"fired {iso(e.fired)}  resolved {iso(e.resolved)}  {duration(e.seconds)}"


def _fires(n: int) -> str:
    return f"{n} fire" + ("" if n == 1 else "s")


def _header(bt: Backtest) -> str:
    if bt.period is None:
        return f"{bt.name}: no results rows"
    start, end = bt.period
    return f"{bt.name}: {iso(start)} .. {iso(end)} ({duration(end - start)} of event time)"


def render(bt: Backtest) -> str:
    lines = [_header(bt)]
    if not bt.series:
        lines.append("no alert would have fired")
    else:
        at_end = sum(s.firing_at_end for s in bt.series)
        lines.append(
            f"{_fires(bt.fires)} of {len(bt.series)} alert/label sets"
            + (f", {at_end} firing at end" if at_end else "")
        )
    for s in bt.series:
        lines.append("")
        lines.append(
            f"{label_text(s.alertname, s.labels)}: {_fires(s.fires)}, "
            f"firing {duration(s.firing_seconds)} in all"
            + (" (firing at end)" if s.firing_at_end else "")
        )
        lines += [f"  {episode_line(e)}" for e in s.episodes]
    return "\n".join(lines) + "\n"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return [fmt(header), *(fmt(r) for r in body)]


def render_compare(a: Backtest, b: Backtest) -> str:
    lines = [f"A = {_header(a)}", f"B = {_header(b)}", ""]
    pairs = pair(a, b)
    if not pairs:
        return "\n".join([*lines, "no alert would have fired under either rule set"]) + "\n"

    def first(s: Series) -> str:
        return "-" if s.first_fire is None else iso(s.first_fire)

    def total(s: Series) -> str:
        if not s.episodes:
            return "-"
        return duration(s.firing_seconds) + ("+" if s.firing_at_end else "")

    header = ["alert / labels", "fires A", "fires B", "first fire A", "first fire B", "firing A", "firing B", ""]  # fmt: skip
    body = [
        [label_text(p.a.alertname, p.a.labels), str(p.a.fires), str(p.b.fires),
         first(p.a), first(p.b), total(p.a), total(p.b), "" if p.a.episodes == p.b.episodes else "*"]
        for p in pairs
    ]  # fmt: skip
    lines += _table(header, body)
    notes = ["*: the episodes differ"] if any(r[-1] for r in body) else []
    if any(p.a.firing_at_end or p.b.firing_at_end for p in pairs):
        notes.append("+: still firing at the end of the period")
    lines += [f"({'; '.join(notes)})"] if notes else []
    for p in pairs:
        lines.append("")
        lines.append(label_text(p.a.alertname, p.a.labels))
        for tag, s in (("A", p.a), ("B", p.b)):
            if not s.episodes:
                lines.append(f"  {tag} never fired")
            lines += [f"  {tag} {episode_line(e)}" for e in s.episodes]
    return "\n".join(lines) + "\n"
