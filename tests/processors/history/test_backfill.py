"""OpenMetrics for backfill: cumulative counters at window ends, promtool's rules, and
promtool itself turning the file into blocks that hold exactly those samples."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from processors.core.results import Row, row
from processors.history.backfill import counts_of_rows, write_openmetrics
from processors.wire import WindowCounts

T0 = 1_763_625_600  # 2025-11-20T08:00:00Z, a whole minute
SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+) (\d+)$")


def mentions(minute: int, value: int, brand: str = "acme", platform: str = "bluesky") -> Row:
    start = T0 + 60 * minute
    return row("mentions", "1m", start, start + 60, {"brand": brand, "platform": platform}, value)


def render(rows: list[Row], **kwargs: float) -> tuple[str, object]:
    out = io.StringIO()
    stats = write_openmetrics(counts_of_rows(rows), "replay1", out, **kwargs)
    return out.getvalue(), stats


def samples(text: str) -> dict[tuple[str, str], list[tuple[int, float]]]:
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"sample without a timestamp or malformed: {line!r}"
        series.setdefault((m[1], m[2]), []).append((int(m[4]), float(m[3])))
    return series


def test_counters_are_cumulative_sums_at_window_ends_from_zero() -> None:
    rows = [mentions(0, 3), mentions(2, 2), mentions(1, 4, brand="globex")]
    text, stats = render(rows)
    got = samples(text)
    acme = got[("ripple_smm_mentions_total", 'namespace="replay1",brand="acme",platform="bluesky"')]
    # 0 at the first window's start, then the running sum at every minute to the last end.
    assert acme == [(T0, 0), (T0 + 60, 3), (T0 + 120, 3), (T0 + 180, 5)]
    globex = got[
        ("ripple_smm_mentions_total", 'namespace="replay1",brand="globex",platform="bluesky"')
    ]
    assert globex == [(T0 + 60, 0), (T0 + 120, 4), (T0 + 180, 4)]
    assert stats.series == 2 and stats.samples == 7  # type: ignore[attr-defined]


def test_window_counts_carry_the_counters_no_row_has() -> None:
    # amplification is a ratio row; its numerator and denominator come as counts only
    windows = [
        WindowCounts(T0, [("ripple_smm_reshares_total", ["acme", "x"], 2),
                          ("ripple_smm_amplifiable_posts_total", ["acme", "x"], 5)]),
        WindowCounts(T0 + 120, [("ripple_smm_reshares_total", ["acme", "x"], 1)]),
    ]  # fmt: skip
    out = io.StringIO()
    write_openmetrics(windows, "replay1", out)
    got = samples(out.getvalue())
    labels = 'namespace="replay1",brand="acme",platform="x"'
    assert got[("ripple_smm_reshares_total", labels)] == [
        (T0, 0), (T0 + 60, 2), (T0 + 120, 2), (T0 + 180, 3)
    ]  # fmt: skip
    assert got[("ripple_smm_amplifiable_posts_total", labels)][:2] == [(T0, 0), (T0 + 60, 5)]


def test_a_count_of_no_catalogue_counter_is_refused() -> None:
    with pytest.raises(ValueError, match="not a counter of the catalogue"):
        write_openmetrics([WindowCounts(T0, [("ripple_nope_total", ["a"], 1)])], "r", io.StringIO())
    with pytest.raises(ValueError, match="not a counter of the catalogue"):
        bad = [WindowCounts(T0, [("ripple_smm_mentions_total", ["acme"], 1)])]  # one label short
        write_openmetrics(bad, "r", io.StringIO())


def test_family_metadata_eof_and_time_order() -> None:
    text, _ = render([mentions(m, 1) for m in range(5)] + [mentions(3, 1, platform="x")])
    lines = text.splitlines()
    assert lines[-1] == "# EOF" and text.endswith("\n")
    assert "# TYPE ripple_smm_mentions counter" in lines
    assert lines.count("# TYPE ripple_smm_mentions counter") == 1  # one block per family
    for pts in samples(text).values():
        times = [t for t, _ in pts]
        assert times == sorted(times) and len(set(times)) == len(times)


def test_only_1m_counted_metrics_are_written() -> None:
    labels = {"brand": "acme", "platform": "bluesky"}
    rows = [
        mentions(0, 3),
        row("mentions", "1h", T0, T0 + 3600, labels, 9),
        row("engagement_rate", "1m", T0, T0 + 60, labels, 0.5),
        row("reshares", "1m", T0, T0 + 60, labels, 2),
        {"metric": "alert", "window": "event", "window_start": "2025-11-20T08:00:00Z",
         "window_end": "2025-11-20T08:00:00Z",
         "labels": {"alertname": "EngagementDrop", "brand": "acme", "platform": "bluesky"},
         "value": 1},
    ]  # fmt: skip
    assert {name for name, _ in samples(render(rows)[0])} == {"ripple_smm_mentions_total"}


def test_smo_labels_follow_the_catalogue_and_are_escaped() -> None:
    rows = [row("social_referrals", "1m", T0, T0 + 60, {"network": "x", "site": 'a"b\\c'}, 2)]
    text, _ = render(rows)
    assert (
        'ripple_smo_social_referrals_total{namespace="replay1",site="a\\"b\\\\c",network="x"} 2 '
        in text
    )


def test_samples_in_the_head_block_window_are_left_out_and_counted() -> None:
    text, stats = render([mentions(m, 1) for m in range(10)], not_after=T0 + 300)
    times = [t for pts in samples(text).values() for t, _ in pts]
    assert max(times) == T0 + 300
    assert stats.skipped_recent == 5  # type: ignore[attr-defined]


def test_label_mismatch_is_a_clear_error() -> None:
    bad = row("mentions", "1m", T0, T0 + 60, {"brand": "acme"}, 1)
    with pytest.raises(ValueError, match="labels"):
        render([bad])


def test_promtool_makes_blocks_holding_exactly_the_samples(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required"
    rows = [mentions(m, m + 1) for m in range(0, 200, 3)] + [
        row("pageviews", "1m", T0 + 60 * m, T0 + 60 * m + 60, {"site": "acme.com"}, 5)
        for m in range(0, 200, 7)
    ]
    text, stats = render(rows)
    om = tmp_path / "x.om"
    om.write_text(text)
    db = tmp_path / "db"
    proc = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(db)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (db / "wal").mkdir()  # `tsdb dump` opens the DB, which wants a WAL dir
    dump = subprocess.run([promtool, "tsdb", "dump", str(db)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    dumped = sorted(line for line in dump.stdout.splitlines() if line.startswith("{"))
    assert len(dumped) == stats.samples  # type: ignore[attr-defined]  # none dropped
    last: dict[str, tuple[int, float]] = {}
    for line in dumped:
        labels, value, ts_ms = line.rsplit(" ", 2)
        last[labels] = max(last.get(labels, (0, 0.0)), (int(ts_ms), float(value)))
    by_name = {k.split(",")[0]: v for k, v in last.items()}
    assert by_name['{__name__="ripple_smm_mentions_total"'][1] == sum(
        m + 1 for m in range(0, 200, 3)
    )
    assert by_name['{__name__="ripple_smo_pageviews_total"'][1] == 5 * len(range(0, 200, 7))
