"""Every record the processors write to their internal topics, declared once.

``<ns>.events`` carries canonical events (``ingest.events``); the stages between them speak
these structs, msgpack-encoded (JSON for the control topic, which people write by hand):

    gate ──GateBatch──▶ <ns>.proc.batches ──resolve──PartialRecord/MarkerRecord──▶ <ns>.proc.partials
    replay ──FlushRequest──▶ <ns>.proc.control ──▶ gate        (GateCheckpoint: commit metadata)
    rollup ──result rows, WindowCounts──▶ <ns>.results ──▶ replay, report, backfill

Decoding is typed, so a crafted or truncated record fails here with a message, and the
agent sends it to the dead-letter topic instead of crashing (see ``processors.job.poison``).
Version 1 of each; a field added later gets a default so older records still decode.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

import msgspec

from ingest.events import MIN_TS  # EVENTS.md's earliest event time

MAX_TS = 253402300799.0  # 9999-12-31T23:59:59Z: finite (the gate bounds it far tighter)

# (role, late flags, event time, raw canonical event, watermark at the event's position).
# The constraints are what the gate guarantees; msgspec checks them while decoding, so a
# crafted item fails there (role 0 primary, 1 reply engagement; flags: late bits + excluded).
Item = tuple[
    Annotated[int, msgspec.Meta(ge=0, le=1)],
    Annotated[int, msgspec.Meta(ge=0, lt=8)],
    Annotated[float, msgspec.Meta(ge=MIN_TS, le=MAX_TS)],
    bytes,
    float,  # -inf before the first event; a NaN would never pass a comparison (inert)
]


class GateCheckpoint(msgspec.Struct):
    """The gate's state, in the metadata of its committed input offsets (JSON)."""

    watermark: float | None = None  # None: nothing seen yet
    max_ts: float | None = None
    flushed: bool = False  # end of a replay: every window closed


class GateBatch(msgspec.Struct):
    """One gate batch for one stage partition: its items and the marker fields after it."""

    wm: float | None
    flushed: bool
    max_ts: float | None
    items: list[Item]


class PartitionProgress(msgspec.Struct):
    """A partition's progress in resolve's item log: the last marker and next input offset."""

    wm: float | None
    flushed: bool
    max_ts: float | None
    next: int = 0


Pair = tuple[str, str]  # (brand, platform), (site, network), (campaign, platform), ...


class PartialBody(msgspec.Struct):
    """A window's aggregates in one partition (``processors.core.resolve.Partial``), field
    by field. Tables keyed by a pair travel as ``(a, b, value)`` rows (msgpack maps take no
    tuple keys). The METRICS.md r2 tables default to empty: a version-1 body decodes."""

    # (brand, platform, mentions, engagements, reshares mentioning, amplifiable posts)
    smm: list[tuple[str, str, int, int, int, int]]
    authors: list[tuple[str, str, dict[str, int]]]  # (brand, platform, {author: followers})
    activity: dict[str, int]  # platform -> counted events
    pageviews: dict[str, int]  # site -> pageviews
    share_total: dict[str, int]  # site -> share clicks
    first_ts: float | None
    last_ts: float | None
    campaigns: list[tuple[str, str, int]] = []
    referrals: list[tuple[str, str, int]] = []
    shares: list[tuple[str, str, int]] = []
    conversions: list[tuple[str, str, int]] = []
    campaign_pageviews: list[tuple[str, str, int]] = []
    paid: list[tuple[str, str, int]] = []
    sentiment: list[tuple[str, str, str, int]] = []  # (brand, platform, label, posts)
    conversion_values: list[tuple[str, str, list[float]]] = []
    top_posts: list[tuple[str, str, dict[str, int]]] = []  # 1h: this partition's top ten
    author_mentions: list[tuple[str, str, dict[str, int]]] = []
    links: list[tuple[str, str, dict[str, int]]] = []


class PartialRecord(msgspec.Struct, tag="partial", tag_field="t"):
    """A window's aggregates from one partition; final or provisional."""

    p: int
    size: int
    start: int
    partial: PartialBody
    final: bool = True


class MarkerRecord(msgspec.Struct, tag="marker", tag_field="t"):
    """A partition's watermark after a batch: windows before it are complete there."""

    p: int
    wm: float | None
    flushed: bool
    max_ts: float | None


RollupInput = PartialRecord | MarkerRecord


class WindowCounts(msgspec.Struct):
    """A final 1m window's counter values (``processors.core.counters.window_counts``), on
    ``<ns>.results`` beside its rows under key ``counts|<start>``: what ``--backfill``
    writes to Prometheus, every counter of the catalogue (amplification's numerator and
    denominator too, which no result row carries). A rebuild re-sends it: same key."""

    start: int
    counts: list[tuple[str, list[str], float]]  # (counter name, label values, value)


COUNTS_KEY_PREFIX = b"counts|"


class Completion(msgspec.Struct):
    """On ``<ns>.results`` under ``COMPLETE_KEY`` once a replay's every window is final:
    a reader of the results (replay, benchmarks) stops there."""

    complete: bool = True


COMPLETE_KEY = b"__complete__"


class ResultRow(TypedDict):
    """A results row (METRICS.md's results-file format), on ``<ns>.results`` as JSON under
    its identity. A TypedDict, not a Struct: rows are read as plain dicts everywhere (report,
    replay, tests), and msgspec validates them as this on decoding just the same."""

    metric: str
    window: str  # "1m", "1h" or "event" (alert transitions)
    window_start: str  # RFC 3339, UTC
    window_end: str
    labels: dict[str, str]
    value: int | float


class GateReport(msgspec.Struct):
    """What one gate batch did, for the worker's metrics: the gate runs in a process of its
    own (``processors.job.gate_process``) and sends this to the worker after each batch."""

    counts: list[tuple[str, str, int]] = []  # (platform, kind, accepted events)
    dead: list[str] = []  # one reason per dead letter
    late: list[tuple[str, int]] = []  # (window name, late events)
    watermark: float | None = None
    newest: list[tuple[str, float]] = []  # (platform, newest event time)
    lag: list[tuple[str, int, int]] = []  # (topic, partition, records behind)


class FlushRequest(msgspec.Struct):
    """End of a replay: close every window once the gate has read up to these offsets."""

    flush_at: dict[int, int]  # events partition -> end offset


_pack = msgspec.msgpack.Encoder().encode
pack = _pack
decode_gate_batch = msgspec.msgpack.Decoder(GateBatch).decode
decode_progress = msgspec.msgpack.Decoder(PartitionProgress).decode
decode_rollup_input = msgspec.msgpack.Decoder(RollupInput).decode  # type: ignore[arg-type]
decode_flush_request = msgspec.json.Decoder(FlushRequest).decode
encode_json = msgspec.json.Encoder().encode
decode_checkpoint = msgspec.json.Decoder(GateCheckpoint).decode
decode_window_counts = msgspec.json.Decoder(WindowCounts).decode
decode_completion = msgspec.json.Decoder(Completion).decode
decode_result_row = msgspec.json.Decoder(ResultRow).decode
decode_gate_report = msgspec.msgpack.Decoder(GateReport).decode

# What a malformed internal record raises on decoding (or on its first use).
MALFORMED = (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError)
