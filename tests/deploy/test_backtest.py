"""``ripple backtest``: the summary of alert rows (deploy.backtest) on hand-made rows, and the
command on the r2 reference dataset: in-process it prints exactly the oracle's fire/resolve
times, through the real broker it prints the same JSON, and --compare with a raised
MentionSpike floor shows MentionSpike gone under B."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy import backtest as bt
from deploy.cli import main
from ingest.config import load_config
from processors.core.rollup import alert_row
from processors.core.windows import iso
from tests.reference import dataset_r2
from tests.reference.oracle import compute_results

ROOT = Path(__file__).resolve().parents[2]
T0 = bt.parse_iso("2026-11-20T08:00:00Z")
M = 60


def minute_row(start: int) -> dict[str, Any]:
    return {"metric": "mentions", "window": "1m", "window_start": iso(start),
            "window_end": iso(start + M), "labels": {"brand": "acme", "platform": "x"}, "value": 1}  # fmt: skip


def alert(t: int, name: str, value: int, **labels: str) -> dict[str, Any]:
    return dict(alert_row(t, name, labels or {"brand": "acme", "platform": "x"}, value))


# ---------------------------------------------------------------- the summary, by hand


def test_episodes_durations_counts_and_firing_at_end() -> None:
    rows = [minute_row(T0), minute_row(T0 + 239 * M)]  # the period: 4 hours
    rows += [
        alert(T0 + 20 * M, "MentionSpike", 1),
        alert(T0 + 34 * M, "MentionSpike", 0),
        alert(T0 + 90 * M, "MentionSpike", 1),
        alert(T0 + 95 * M, "MentionSpike", 0),
        alert(T0 + 200 * M, "EngagementDrop", 1, brand="acme", platform="bluesky"),
        alert(T0 + 60 * M, "SocialReferralDrop", 1, site="acme.com", network="x"),
        alert(T0 + 61 * M, "SocialReferralDrop", 0, site="acme.com", network="x"),
    ]
    s = bt.summarise(reversed(rows), "a.toml")  # any row order
    assert s.period == (T0, T0 + 240 * M)
    got = {(x.alertname, x.labels): x for x in s.series}
    assert [x.alertname for x in s.series] == [
        "EngagementDrop",
        "MentionSpike",
        "SocialReferralDrop",
    ]
    spike = got["MentionSpike", (("brand", "acme"), ("platform", "x"))]
    assert [(e.fired - T0, e.resolved and e.resolved - T0, e.seconds) for e in spike.episodes] == [
        (20 * M, 34 * M, 14 * M),
        (90 * M, 95 * M, 5 * M),
    ]
    assert (spike.fires, spike.firing_seconds, spike.firing_at_end) == (2, 19 * M, False)
    drop = got["EngagementDrop", (("brand", "acme"), ("platform", "bluesky"))]
    assert drop.episodes == [bt.Episode(T0 + 200 * M, None, 40 * M)]  # to the period's end
    assert drop.firing_at_end and s.fires == 4

    text = bt.render(s)
    assert "4 fires of 3 alert/label sets, 1 firing at end" in text
    assert "MentionSpike brand=acme platform=x: 2 fires, firing 19m in all" in text
    assert "fired 2026-11-20T08:20:00Z  resolved 2026-11-20T08:34:00Z  14m" in text
    assert "fired 2026-11-20T11:20:00Z  firing at end (40m so far)" in text
    assert "SocialReferralDrop site=acme.com network=x: 1 fire, firing 1m in all" in text

    j = bt.to_json(s)
    assert j["period"] == {"start": "2026-11-20T08:00:00Z", "end": "2026-11-20T12:00:00Z"}
    assert j["alerts"][0] == {
        "alertname": "EngagementDrop", "labels": {"brand": "acme", "platform": "bluesky"},
        "fires": 1, "firing_seconds": 2400, "firing_at_end": True,
        "first_fire": "2026-11-20T11:20:00Z",
        "episodes": [{"fired": "2026-11-20T11:20:00Z", "resolved": None, "seconds": 2400,
                      "firing_at_end": True}],
    }  # fmt: skip


def test_transitions_the_detector_cannot_emit_make_no_episode() -> None:
    rows = [minute_row(T0)]
    rows += [alert(T0, "MentionSpike", 0), alert(T0 + M, "MentionSpike", 1),
             alert(T0 + 2 * M, "MentionSpike", 1), alert(T0 + 3 * M, "MentionSpike", 0)]  # fmt: skip
    (s,) = bt.summarise(rows).series
    assert s.episodes == [bt.Episode(T0 + M, T0 + 3 * M, 2 * M)]
    empty = bt.summarise([minute_row(T0)])
    assert empty.series == [] and "no alert would have fired" in bt.render(empty)


def test_compare_table() -> None:
    base = [minute_row(T0), minute_row(T0 + 119 * M)]
    a = bt.summarise(base + [alert(T0 + 10 * M, "MentionSpike", 1), alert(T0 + 25 * M, "MentionSpike", 0),
                             alert(T0 + 50 * M, "EngagementDrop", 1)], "a.toml")  # fmt: skip
    b = bt.summarise(base + [alert(T0 + 50 * M, "EngagementDrop", 1),
                             alert(T0 + 100 * M, "EngagementDrop", 0)], "b.toml")  # fmt: skip
    table = bt.compare_json(a, b)["table"]
    assert table == [
        {"alertname": "EngagementDrop", "labels": {"brand": "acme", "platform": "x"},
         "fires_a": 1, "fires_b": 1, "first_fire_a": "2026-11-20T08:50:00Z",
         "first_fire_b": "2026-11-20T08:50:00Z", "firing_seconds_a": 70 * M, "firing_seconds_b": 50 * M},
        {"alertname": "MentionSpike", "labels": {"brand": "acme", "platform": "x"},
         "fires_a": 1, "fires_b": 0, "first_fire_a": "2026-11-20T08:10:00Z",
         "first_fire_b": None, "firing_seconds_a": 15 * M, "firing_seconds_b": 0},
    ]  # fmt: skip
    lines = bt.render_compare(a, b).splitlines()
    assert lines[0].startswith("A = a.toml: 2026-11-20T08:00:00Z .. 2026-11-20T10:00:00Z")
    assert lines[3].split() == ["alert", "/", "labels", "fires", "A", "fires", "B", "first",
                                "fire", "A", "first", "fire", "B", "firing", "A", "firing", "B"]  # fmt: skip
    assert lines[4].split() == ["EngagementDrop", "brand=acme", "platform=x", "1", "1",
                                "2026-11-20T08:50:00Z", "2026-11-20T08:50:00Z", "1h", "10m+", "50m", "*"]  # fmt: skip
    assert lines[5].split() == ["MentionSpike", "brand=acme", "platform=x", "1", "0",
                                "2026-11-20T08:10:00Z", "-", "15m", "-", "*"]  # fmt: skip
    text = "\n".join(lines)
    assert "(*: the episodes differ; +: still firing at the end of the period)" in text
    assert "  A fired 2026-11-20T08:50:00Z  firing at end (1h 10m so far)" in text
    assert "  B fired 2026-11-20T08:50:00Z  resolved 2026-11-20T09:40:00Z  50m" in text
    assert "MentionSpike brand=acme platform=x\n  A fired 2026-11-20T08:10:00Z  resolved" in text
    assert "  B never fired" in text


def test_durations() -> None:
    assert [bt.duration(s) for s in (0, 45, 60, 14 * M, 14 * M + 5, 3600, 2 * 3600 + 5 * M, 86400 * 3 + 4 * 3600)] == [
        "0s", "45s", "1m", "14m", "14m 05s", "1h 00m", "2h 05m", "3d 4h"]  # fmt: skip


# ---------------------------------------------------------------- the command, r2 dataset


def transitions_of(summary: dict[str, Any]) -> list[tuple[str, str, dict[str, str], int]]:
    """(T, alertname, labels, 1 fire | 0 resolve) from the --json output, sorted."""
    out = []
    for a in summary["alerts"]:
        for e in a["episodes"]:
            out.append((e["fired"], a["alertname"], a["labels"], 1))
            if e["resolved"] is not None:
                out.append((e["resolved"], a["alertname"], a["labels"], 0))
    return sorted(out, key=lambda t: (t[0], t[1], json.dumps(t[2], sort_keys=True), t[3]))


def oracle_transitions(rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, str], int]]:
    out = []
    for r in rows:
        if r["metric"] == "alert":
            labels = dict(r["labels"])
            out.append((r["window_start"], labels.pop("alertname"), labels, r["value"]))
    return sorted(out, key=lambda t: (t[0], t[1], json.dumps(t[2], sort_keys=True), t[3]))


def backtest_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["backtest", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def r2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[bytes]]:
    toml, lines = dataset_r2.generate(seed=20)
    d = tmp_path_factory.mktemp("backtest")
    (d / "r2.toml").write_text(toml)
    (d / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return d / "r2.toml", d / "events.jsonl", lines


def raised_floor(toml: str) -> str:
    """The same rules with MentionSpike's floor far above the dataset's spike."""
    old = "[alerts.MentionSpike]\nfloor = 25\n"
    assert old in toml
    return toml.replace(old, "[alerts.MentionSpike]\nfloor = 500\n")


def test_in_process_prints_the_oracles_fire_and_resolve_times(r2, capsys) -> None:
    cfg, events, lines = r2
    got = backtest_json(capsys, "--config", str(cfg), "--input", str(events), "--in-process")
    expected = oracle_transitions(compute_results(lines, load_config(cfg)))
    assert {t[1] for t in expected} == {"EngagementDrop", "MentionSpike",
                                        "NegativeSentimentSpike", "SocialReferralDrop"}  # fmt: skip
    assert transitions_of(got) == expected
    assert got["period"] == {"start": "2026-11-20T08:00:00Z", "end": "2026-11-20T12:00:00Z"}
    assert got["fires"] == sum(1 for t in expected if t[3] == 1)
    # and the text says the same times
    assert main(["backtest", "--config", str(cfg), "--input", str(events), "--in-process"]) == 0
    text = capsys.readouterr().out
    for t, name, labels, value in expected:
        assert f"{'fired' if value else 'resolved'} {t}" in text, (t, name, labels)


def test_compare_with_a_raised_floor_drops_mention_spike_in_b(r2, tmp_path, capsys) -> None:
    cfg, events, _ = r2
    other = tmp_path / "b.toml"
    other.write_text(raised_floor(cfg.read_text()))
    got = backtest_json(capsys, "--config", str(cfg), "--input", str(events), "--in-process",
                        "--compare", str(other), "--results-dir", str(tmp_path / "res"))  # fmt: skip
    table = {r["alertname"]: r for r in got["table"]}
    assert table["MentionSpike"]["fires_a"] >= 1 and table["MentionSpike"]["fires_b"] == 0
    assert table["MentionSpike"]["first_fire_b"] is None
    assert "MentionSpike" not in {a["alertname"] for a in got["b"]["alerts"]}
    for name in ("EngagementDrop", "NegativeSentimentSpike", "SocialReferralDrop"):
        assert table[name]["fires_a"] == table[name]["fires_b"] >= 1
    assert [a for a in got["a"]["alerts"] if a["alertname"] != "MentionSpike"] == got["b"]["alerts"]
    assert (tmp_path / "res" / "a.jsonl").stat().st_size > 0  # kept for `ripple report`


@pytest.mark.integration
def test_through_kafka_gives_the_same_json_as_in_process(
    stack, r2, tmp_path, namespace, capsys
) -> None:
    _, events, lines = r2
    cfg = tmp_path / "ripple.toml"
    cfg.write_text(stack.config_path.read_text() + "\n" + dataset_r2.R2_TOML)
    fast = backtest_json(capsys, "--config", str(cfg), "--input", str(events), "--in-process")
    assert len({a["alertname"] for a in fast["alerts"]}) == 4
    cmd = [sys.executable, "-m", "deploy.cli", "backtest", "--config", str(cfg), "--input", str(events),
           "--namespace", namespace, "--timeout", "300", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == fast
    # the replay's own report went to stderr, not into the JSON on stdout
    assert f"replayed {len(lines)} events" in proc.stderr
