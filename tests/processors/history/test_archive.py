"""``ripple archive``: daily zstd files made of complete frames, readable when cut short,
resumable without gap or duplicate, and a replay of the archive equals a direct replay."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from deploy.history import DEMO_CONFIG, HistorySpec, generate
from ingest.topics import Topics
from processors.history import archive_state as st
from processors.history.aligned import AlignedMerge
from processors.history.archive import Archiver, as_line
from processors.history.replay import open_lines, produce_lines
from processors.history.zstd_frames import compress_frame
from tests.processors.replay_helpers import (
    ROOT,
    produce_raw,
    replay_config,
    ripple,
    rows,
    run_replay,
)

BASE_MS = 1_763_676_000_000  # 2025-11-20T22:00:00Z: the records below span three days
# Records keep their (old) event times as timestamps: keep the broker's retention off them.
KEEP = {"retention.ms": "-1"}


# --- files, without Kafka -----------------------------------------------------------------


def test_every_frame_of_a_multi_frame_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl.zst"
    f.write_bytes(compress_frame(b"1\n2\n") + compress_frame(b"3\n") + compress_frame(b"4\n5\n"))
    assert list(open_lines(f)) == [b"1", b"2", b"3", b"4", b"5"]


def test_a_file_cut_short_keeps_its_complete_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = compress_frame(b"".join(b'{"n":%d}\n' % i for i in range(100)))
    # A frame much larger than one zstd block (128 KiB), cut in its middle: what a crash
    # during a flush leaves behind.
    second = compress_frame(b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, os.urandom(40).hex().encode())
                                     for i in range(100, 20_000)))  # fmt: skip
    f = tmp_path / "cut.jsonl.zst"
    f.write_bytes(first + second[: len(second) // 2])
    with caplog.at_level(logging.WARNING):
        got = list(open_lines(f))
    assert "cut short" in caplog.text
    ns = [json.loads(line)["n"] for line in got]  # every line read is a whole record
    assert ns == list(range(len(ns))) and 100 < len(ns) < 20_000


def test_records_that_span_lines_are_written_on_one() -> None:
    assert as_line(b'{"a":1}') == (b'{"a":1}', False)
    assert as_line(b'{\n  "a": 1\n}') == (b'{"a":1}', True)
    line, rewritten = as_line(b"not\njson")
    assert rewritten and b"\n" not in line and json.loads(line) == "not\njson"


def test_recovery_cuts_back_to_the_checkpoint(tmp_path: Path) -> None:
    frame = compress_frame(b"x\n")
    (tmp_path / "2025-11-20.jsonl.zst").write_bytes(frame + frame[:5])  # a torn second frame
    (tmp_path / "2025-11-21.jsonl.zst").write_bytes(frame)  # made after the checkpoint
    st.save(tmp_path, st.Checkpoint("ns.events", {0: 1}, {"2025-11-20.jsonl.zst": len(frame)}))
    cp = st.recover(tmp_path, "ns.events")
    assert cp.offsets == {0: 1}
    assert [p.name for p in st.day_files(tmp_path)] == ["2025-11-20.jsonl.zst"]
    assert (tmp_path / "2025-11-20.jsonl.zst").read_bytes() == frame


def test_recovery_refuses_what_it_cannot_vouch_for(tmp_path: Path) -> None:
    frame = compress_frame(b"x\n")
    (tmp_path / "2025-11-20.jsonl.zst").write_bytes(frame)
    with pytest.raises(st.ArchiveError, match="no .checkpoint.json"):
        st.recover(tmp_path, "ns.events")
    st.save(tmp_path, st.Checkpoint("ns.events", {0: 1}, {"2025-11-20.jsonl.zst": 2 * len(frame)}))
    with pytest.raises(st.ArchiveError, match="shorter"):
        st.recover(tmp_path, "ns.events")
    with pytest.raises(st.ArchiveError, match="archives ns.events"):
        st.recover(tmp_path, "other.events")


def test_one_archiver_per_directory(tmp_path: Path) -> None:
    with st.lock(tmp_path), pytest.raises(st.ArchiveError, match="another"):
        st.lock(tmp_path)


@dataclass
class R:
    offset: int
    timestamp: int


def test_partitions_merge_by_timestamp_up_to_what_all_have_reached() -> None:
    m = AlignedMerge([0, 1])
    m.add(0, [R(0, 10), R(1, 20), R(2, 15), R(3, 40)])  # 15 is late: stays after 20
    m.add(1, [R(0, 12)])
    # Partition 1 has only reached 12: nothing newer can go out yet.
    assert [r.timestamp for r in m.release(set())] == [10, 12]
    assert m.next_offsets({0: 4, 1: 1}) == {0: 1, 1: 1}
    assert m.ahead(set(), hold=2) == {0}  # fetched far ahead of partition 1
    m.add(1, [R(1, 30)])
    assert [r.timestamp for r in m.release(set())] == [20, 15, 30]
    assert m.next_offsets({0: 4, 1: 2}) == {0: 3, 1: 2}
    # At its end offset, partition 1 holds nothing back.
    assert [r.timestamp for r in m.release({1})] == [40]
    assert m.held() == 0


# --- against the real broker ---------------------------------------------------------------


def numbered(start: int, stop: int, partitions: int = 3) -> list[tuple[int, int, bytes]]:
    """Records ``seq`` start..stop-1: one a minute of event time, round robin over partitions."""
    out = []
    for seq in range(start, stop):
        ts = BASE_MS + seq * 60_000
        out.append(
            (
                seq % partitions,
                ts,
                json.dumps({"seq": seq, "p": seq % partitions, "ts": ts}).encode(),
            )
        )
    return out


def archived_offsets(directory: Path, topic: str) -> int:
    """Records the checkpoint says are archived (0 before the first flush)."""
    if not (directory / st.CHECKPOINT).exists():
        return 0
    cp = st.load(directory, topic)
    return sum(cp.offsets.values()) if cp else 0


def check_archive(directory: Path, expected: int) -> None:
    """Exactly seq 0..expected-1, each in the file of its day, each partition in order."""
    seen: list[int] = []
    for f in st.day_files(directory):
        last: dict[int, int] = defaultdict(lambda: -1)
        for line in open_lines(f):
            rec = json.loads(line)
            day = datetime.fromtimestamp(rec["ts"] / 1000, tz=UTC).date().isoformat()
            assert f.name == f"{day}.jsonl.zst"
            assert rec["seq"] > last[rec["p"]], f"partition {rec['p']} out of order in {f.name}"
            last[rec["p"]] = rec["seq"]
            seen.append(rec["seq"])
    assert len(seen) == len(set(seen)), "duplicates"
    assert sorted(seen) == list(range(expected)), "gap"


def test_archive_resumes_where_it_stopped(stack, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    topic = stack.create_topics(Topics(namespace).events, partitions=3, config=KEEP)[0]
    produce_raw(stack.bootstrap, topic, numbered(0, 3000))
    first = Archiver(stack.bootstrap, namespace, tmp_path, flush_records=100, flush_seconds=60)
    first.run(stop=lambda: first.flushes >= 2)  # stopped midway
    done = first.stats.records
    assert 0 < done < 3000
    # What a crash after a write but before its checkpoint leaves: a torn frame, a new file.
    d = tmp_path / namespace
    with (st.day_files(d)[0]).open("ab") as fh:
        fh.write(compress_frame(b'{"seq": -1}\n' * 50)[:30])
    (d / "2030-01-01.jsonl.zst").write_bytes(compress_frame(b'{"seq": -2}\n'))
    produce_raw(stack.bootstrap, topic, numbered(3000, 4000))
    second = Archiver(stack.bootstrap, namespace, tmp_path, flush_records=400)
    second.run()
    assert second.stats.records == 4000 - done
    check_archive(d, 4000)
    third = Archiver(stack.bootstrap, namespace, tmp_path)
    assert third.run().records == 0  # caught up: nothing twice


def test_archive_killed_anywhere_loses_and_repeats_nothing(
    stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    topic = stack.create_topics(Topics(namespace).events, partitions=3, config=KEEP)[0]
    produce_raw(stack.bootstrap, topic, numbered(0, 2000))
    cmd = [sys.executable, "-m", "deploy.cli", "archive", "--config", str(stack.config_path),
           "--namespace", namespace, "--dir", str(tmp_path), "--follow",
           "--flush-records", "150", "--flush-seconds", "0.05"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    produce_raw(stack.bootstrap, topic, numbered(2000, 3000))
    while archived_offsets(tmp_path / namespace, topic) == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "the archiver did not start"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # mid-flight: any step of a flush
    proc.wait()
    resumed = ripple("archive", "--config", str(stack.config_path), "--namespace", namespace,
                     "--dir", str(tmp_path), "--until-end")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    check_archive(tmp_path / namespace, 3000)


def test_follow_stops_cleanly_on_sigterm(stack, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    topic = stack.create_topics(Topics(namespace).events, partitions=3, config=KEEP)[0]
    cmd = [sys.executable, "-m", "deploy.cli", "archive", "--config", str(stack.config_path),
           "--namespace", namespace, "--dir", str(tmp_path), "--follow", "--flush-seconds", "0.2"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        produce_raw(stack.bootstrap, topic, numbered(0, 500))
        deadline = time.monotonic() + 60
        while archived_offsets(tmp_path / namespace, topic) < 500:
            assert time.monotonic() < deadline, "the follower did not archive the records"
            time.sleep(0.1)
        produce_raw(stack.bootstrap, topic, numbered(500, 600))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "archived" in out
    # What it flushed on the way out plus what a catch-up adds is exactly everything.
    ripple(
        "archive",
        "--config",
        str(stack.config_path),
        "--namespace",
        namespace,
        "--dir",
        str(tmp_path),
    )
    check_archive(tmp_path / namespace, 600)


def test_replay_of_the_archive_equals_a_direct_replay(
    stack, namespace: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # Half an hour across midnight: two day files.
    spec = HistorySpec(start=1_763_682_300.0, hours=0.5, seed=3)  # 2025-11-20T23:45Z
    lines = list(generate(spec))
    source = f"{namespace}src"
    stack.create_topics(Topics(source).events, partitions=3, config=KEEP)  # like live
    assert produce_lines(stack.bootstrap, source, lines) == len(lines)  # keyed over partitions
    archived = ripple("archive", "--config", str(stack.config_path), "--namespace", source,
                      "--dir", str(tmp_path / "archive"), "--flush-records", "500")  # fmt: skip
    assert archived.returncode == 0, archived.stderr
    files = st.day_files(tmp_path / "archive" / source)
    assert [f.name for f in files] == ["2025-11-20.jsonl.zst", "2025-11-21.jsonl.zst"]
    got = [line for f in files for line in open_lines(f)]
    assert sorted(got) == sorted(lines)  # verbatim
    times = [orjson.loads(line)["ts"] for line in got]
    assert times == sorted(times)  # the partitions merged back into event-time order

    cfg = replay_config(stack.config_path, DEMO_CONFIG, tmp_path / "ripple.toml")
    direct_in = tmp_path / "events.jsonl"
    direct_in.write_bytes(b"\n".join(lines) + b"\n")
    run_replay(cfg, f"{namespace}a", tmp_path / "direct.jsonl", "--input", str(direct_in))
    inputs = [arg for f in files for arg in ("--input", str(f))]
    replayed = run_replay(cfg, f"{namespace}b", tmp_path / "from-archive.jsonl", *inputs)
    direct = rows(tmp_path / "direct.jsonl")
    assert len(direct) > 100 and {r["metric"] for r in direct} >= {"mentions", "pageviews"}
    assert rows(tmp_path / "from-archive.jsonl") == direct, replayed
