"""The internal records: a partial's aggregates survive the wire field by field, records
written by an earlier version still decode, and a malformed one fails at decoding."""

from __future__ import annotations

import msgspec
import pytest

from processors.core.resolve import Partial, SmmCounts
from processors.wire import (
    MALFORMED,
    MarkerRecord,
    PartialRecord,
    decode_gate_batch,
    decode_rollup_input,
    pack,
)


def _partial() -> Partial:
    p = Partial()
    p.smm[("acme", "x")] = SmmCounts(3, 2, 1, 4)
    p.authors[("acme", "x")] = {"a1": 10, "a2": 0}
    p.activity["x"] = 5
    p.pageviews["shop"] = 7
    p.share_total["shop"] = 2
    p.campaigns[("launch", "x")] = 1
    p.referrals[("shop", "reddit")] = 3
    p.shares[("shop", "x")] = 2
    p.conversions[("shop", "reddit")] = 1
    p.campaign_pageviews[("shop", "launch")] = 4
    p.paid[("shop", "reddit")] = 1
    p.sentiment[("acme", "x", "negative")] = 2
    p.conversion_values[("shop", "reddit")] = [19.99]
    p.top_posts[("acme", "x")] = {"post1": 2}
    p.author_mentions[("acme", "x")] = {"a1": 2}
    p.links[("acme", "x")] = {"https://acme.example/": 1}
    p.first_ts, p.last_ts = 1000.0, 1059.5
    return p


def _tables(p: Partial) -> dict[str, object]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in vars(p).items()}


def test_a_partial_round_trips_through_its_record() -> None:
    p = _partial()
    msg = decode_rollup_input(pack(PartialRecord(2, 60, 960, p.to_wire(), final=False)))
    assert isinstance(msg, PartialRecord)
    assert (msg.p, msg.size, msg.start, msg.final) == (2, 60, 960, False)
    assert _tables(Partial.from_wire(msg.partial)) == _tables(p)


def test_a_copy_from_the_wire_shares_no_table_with_its_original() -> None:
    p = _partial()
    copy = Partial.from_wire(p.to_wire())
    copy.merge(p)
    assert p.smm[("acme", "x")] == SmmCounts(3, 2, 1, 4)
    assert p.top_posts[("acme", "x")] == {"post1": 2}
    assert copy.smm[("acme", "x")] == SmmCounts(6, 4, 2, 8)
    assert copy.conversion_values[("shop", "reddit")] == [19.99, 19.99]


def test_a_version_1_partial_without_the_r2_tables_still_decodes() -> None:
    legacy = {"t": "partial", "p": 0, "size": 60, "start": 0, "final": True,
              "partial": {"smm": [["acme", "x", 1, 0, 0, 1]], "authors": [["acme", "x", {"a": 3}]],
                          "activity": {"x": 1}, "pageviews": {}, "share_total": {},
                          "first_ts": 1.0, "last_ts": 1.0}}  # fmt: skip
    msg = decode_rollup_input(msgspec.msgpack.encode(legacy))
    assert isinstance(msg, PartialRecord)
    p = Partial.from_wire(msg.partial)
    assert p.smm[("acme", "x")] == SmmCounts(1, 0, 0, 1)
    assert not p.sentiment and not p.top_posts


@pytest.mark.parametrize(
    "record",
    [
        {"t": "partial", "p": 0},  # truncated
        {"t": "partial", "p": 0, "size": 60, "start": 0,
         "partial": {"smm": [["acme", "x", "many", 0, 0, 0]], "authors": [], "activity": {},
                     "pageviews": {}, "share_total": {}, "first_ts": None, "last_ts": None}},
        {"t": "nonsense", "p": 0},
    ],
)  # fmt: skip
def test_a_malformed_record_fails_at_decoding(record: dict[str, object]) -> None:
    with pytest.raises(MALFORMED):
        decode_rollup_input(msgspec.msgpack.encode(record))


def test_a_marker_decodes_as_a_marker() -> None:
    msg = decode_rollup_input(pack(MarkerRecord(1, 120.0, False, 130.0)))
    assert msg == MarkerRecord(1, 120.0, False, 130.0)


def _batch(item: list[object]) -> bytes:
    return msgspec.msgpack.encode({"wm": None, "flushed": False, "max_ts": None, "items": [item]})


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ([2, 0, 1.7e9, b"{}", 1.7e9], "<= 1"),  # no such role
        ([0, 8, 1.7e9, b"{}", 1.7e9], "<= 7"),  # no such flag
        ([0, 0, 1.0, b"{}", 1.7e9], ">= 946684800"),  # before 2000
        ([0, 0, float("inf"), b"{}", 1.7e9], "<= 253402300799"),
        ([0, 0, float("nan"), b"{}", 1.7e9], ">= 946684800"),
        ([0, 0, 1.7e9, "text", 1.7e9], "Expected `bytes`"),
    ],
)
def test_a_gate_item_outside_what_the_gate_writes_fails_at_decoding(
    item: list[object], problem: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        decode_gate_batch(_batch(item))


def test_a_gate_item_as_the_gate_writes_it_decodes() -> None:
    b = decode_gate_batch(_batch([1, 5, 1.7e9, b"{}", float("-inf")]))
    assert b.items == [(1, 5, 1.7e9, b"{}", float("-inf"))]
