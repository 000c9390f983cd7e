"""Batch format (protocol v1): sealing, parsing, signatures, hostile inputs, daily aggregates."""

from __future__ import annotations

import gzip
import json

import pytest

from edgenode.core.identity import load_or_create
from edgenode.protocol import usage_batch as B

NODE = "0123456789abcdef0123456789abcdef"


def _rows(n, start=1):
    return [(start + i, 1764000000.5 + i * 0.25, "progress" if i % 3 else "search", f"term{i % 7}",
             None if i % 3 == 0 else f"res-{i % 11}", None if i % 3 == 0 else "sannong", 15.0 if i % 3 else 0.0,
             json.dumps({"q": "水稻"}, ensure_ascii=False) if i % 3 == 0 else None) for i in range(n)]


def test_seal_and_read_round_trip():
    rows = _rows(100, start=41)
    data = B.seal_bytes(NODE, 7, B.event_lines(rows), first_seq=41, last_seq=140, sealed_at=1764000000.0)
    header, lines = B.read_batch(data)
    assert header == {"v": 1, "node_id": NODE, "batch_no": 7, "first_seq": 41, "last_seq": 140, "count": 100,
                      "sealed_at": 1764000000.0, "kind": "events"}
    assert [e["s"] for e in lines] == list(range(41, 141))
    first = lines[0]
    assert first == {"s": 41, "t": 1764000000.5, "k": "search", "m": "term0", "r": None, "c": None, "d": 0.0,
                     "x": {"q": "水稻"}}
    assert isinstance(lines[1]["d"], float) and lines[1]["d"] == 15.0
    # deterministic bytes: a re-seal after a crash is byte-identical, so the hub answers "duplicate"
    assert data == B.seal_bytes(NODE, 7, B.event_lines(rows), first_seq=41, last_seq=140, sealed_at=1764000000.0)


def test_compact_lines_have_sorted_keys():
    line = B.event_lines(_rows(2))[1]
    assert list(json.loads(line)) == sorted(json.loads(line))
    assert " " not in line


def test_signature(cfg):
    ident = load_or_create(cfg)
    data = B.seal_bytes(ident.node_id, 3, B.event_lines(_rows(5)), first_seq=1, last_seq=5)
    sig = B.sign_batch(ident, 3, data)
    assert B.verify_batch(ident.public_b64(), ident.node_id, 3, data, sig)
    assert not B.verify_batch(ident.public_b64(), ident.node_id, 4, data, sig)
    assert not B.verify_batch(ident.public_b64(), ident.node_id, 3, data + b"x", sig)
    assert not B.verify_batch(ident.public_b64(), ident.node_id, 3, data, "not base64!")
    assert B.batch_message(NODE, 12, "ab") == f"{NODE}:12:ab".encode()
    assert B.batch_name(NODE, 12) == f"{NODE}-000000000012.batch"


def _gz(*lines):
    return gzip.compress(("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n").encode(), mtime=0)


HDR = {"v": 1, "node_id": NODE, "batch_no": 1, "first_seq": 1, "last_seq": 2, "count": 1, "sealed_at": 1.0,
       "kind": "events"}
EV = {"s": 1, "t": 1.0, "k": "view", "m": "t", "r": None, "c": None, "d": 0.0, "x": None}


@pytest.mark.parametrize("data, reason", [
    (b"", "not gzip"),
    (b"plain text", "not gzip"),
    (gzip.compress(b"", mtime=0)[:-4], "truncated"),
    (_gz("{not json"), "not JSON"),
    (_gz({**HDR, "v": 2}, EV), "version"),
    (_gz({k: v for k, v in HDR.items() if k != "count"}, EV), "lacks count"),
    (_gz({**HDR, "kind": "hourly"}, EV), "kind"),
    (_gz({**HDR, "batch_no": -1}, EV), "batch_no"),
    (_gz({**HDR, "batch_no": True}, EV), "batch_no"),
    (_gz({**HDR, "first_seq": 5}, EV), "last_seq is below"),
    (_gz(HDR, {**EV, "s": 3}), "outside"),
    (_gz({**HDR, "count": 2}, EV, EV), "out of order"),
    (_gz({**HDR, "count": 2}, EV), "count"),
    (_gz(HDR, {**EV, "d": -1}), "not negative"),
    (_gz(HDR, {**EV, "x": [1]}), "x must be"),
    (_gz(HDR, {**EV, "d": float("inf")}), "finite"),
    (_gz(HDR, {**EV, "t": float("nan")}), "finite"),
    (_gz(HDR, {**EV, "s": True}), "out of order"),
    (_gz(HDR, "[1", "2]"), "not JSON"),
    (_gz(HDR, {k: v for k, v in EV.items() if k != "m"}), "lacks"),
    (_gz({**HDR, "kind": "daily"}, {"day": "2025-13-01", "r": None, "c": None, "k": "view", "n": 1, "d": 0,
                                    "u": 1}), "bad day"),
    (_gz({**HDR, "kind": "daily"}, {"day": "2025-12-01", "r": None, "c": None, "k": "view", "n": 1, "d": 0,
                                    "u": 2}), "u between"),
    (_gz({**HDR, "kind": "daily", "count": 5}, {"day": "2025-12-01", "r": None, "c": None, "k": "view", "n": 1,
                                                "d": 0, "u": 1}), "sum to"),
    (gzip.compress(b"\xff\xfe\n", mtime=0), "UTF-8"),
])
def test_read_batch_refuses_hostile_input(data, reason):
    with pytest.raises(B.BatchError) as e:
        B.read_batch(data)
    assert e.value.code == "E_BATCH_FORMAT"
    assert reason in e.value.message


def test_gzip_bomb_refused(monkeypatch):
    monkeypatch.setattr(B, "MAX_PLAIN_BYTES", 1000)
    with pytest.raises(B.BatchError, match="size limit"):
        B.read_batch(gzip.compress(b" " * 5000))


def test_daily_summary_keeps_counts():
    rows = _rows(300)
    data = B.seal_bytes(NODE, 1, B.event_lines(rows), first_seq=1, last_seq=300)
    header, events = B.read_batch(data)
    agg = B.summarise(header, events)
    daily = B.seal_bytes(NODE, 1, agg, first_seq=1, last_seq=300, count=sum(a["n"] for a in agg), kind="daily")
    h2, lines = B.read_batch(daily)
    assert h2["kind"] == "daily" and h2["count"] == 300
    assert sum(a["n"] for a in lines) == 300
    assert sum(a["d"] for a in lines) == pytest.approx(sum(e["d"] for e in events))
    assert len(daily) < len(data)


def test_sql_and_python_lines_agree_and_odd_rows_are_made_safe(cfg):
    """One odd row must never block the uplink: x only as an object, seconds and time clamped."""
    from edgenode.core.db import open_main, transaction
    from edgenode.node.sync import outbox
    conn = open_main(cfg)
    rows = [(1764000000.25, "view", "t1", "r1", "sannong", 0.0, '{"q": "水稻"}'),
            (1764000001.0, "progress", "t2", "r2", "pushi", 15.0, None),
            (1764000002.0, "view", "t3", None, None, -5.0, "[1, 2]"),        # negative seconds, list extra
            (1e300, "view", "t4", None, None, 1e12, "not json"),             # absurd clock, absurd seconds
            (-7.0, "search", "t5", None, None, 0.0, '"just a string"')]
    with transaction(conn):
        conn.executemany("INSERT INTO usage_events (at, mono, boot_id, terminal, kind, resource_id, column_key, "
                         "seconds, data) VALUES (?, 0, 'b', ?, ?, ?, ?, ?, ?)",
                         [(a, t, k, r, c, s, d) for a, k, t, r, c, s, d in rows])
    sql = [r[1] for r in conn.execute(outbox.EVENT_LINE_SQL, (0, 100))]
    py = B.event_lines(conn.execute("SELECT seq, at, kind, terminal, resource_id, column_key, seconds, data "
                                    "FROM usage_events ORDER BY seq").fetchall())
    assert [json.loads(x) for x in sql] == [json.loads(x) for x in py]
    header, events = B.read_batch(B.seal_bytes(NODE, 1, sql, first_seq=1, last_seq=5))
    assert [e["x"] for e in events] == [{"q": "水稻"}, None, None, None, None]
    assert [e["d"] for e in events] == [0.0, 15.0, 0.0, 86400.0, 0.0]
    assert events[3]["t"] == B.MAX_TIME and events[4]["t"] == 0.0
    conn.close()


def test_daily_summary_uses_the_statistics_day_not_utc():
    # 2025-11-24 20:30 UTC is already 2025-11-25 in China, where the hub counts its days.
    t = 1764016200.0
    events = [{"s": 1, "t": t, "k": "view", "m": "t1", "r": "r1", "c": "sannong", "d": 0.0, "x": None}]
    assert B.summarise({}, events)[0]["day"] == "2025-11-25"
    assert B.summarise({}, events, offset_hours=0)[0]["day"] == "2025-11-24"


def _votes_batch(n=6):
    rows = [(i + 1, 1764000000.0 + i, "vote", f"t{i}", None, None, 0.0,
             json.dumps({"campaign": "county.qunwen", "item": str(10 + i % 2)})) for i in range(n)]
    rows += [(n + 1, 1764000100.0, "play_start", "t0", "res-1", "sannong", 0.0, None)]
    data = B.seal_bytes(NODE, 1, B.event_lines(rows), first_seq=1, last_seq=n + 1)
    return B.read_batch(data)


def test_summarising_keeps_votes_whole():
    """Votes carry their campaign and item in x: a daily count alone would lose them (the hub's tally)."""
    header, events = _votes_batch()
    agg = B.summarise(header, events)
    daily = B.seal_bytes(NODE, 1, agg, first_seq=1, last_seq=7, count=7, kind="daily")
    _, lines = B.read_batch(daily)
    (votes,) = [a for a in lines if a["k"] == "vote"]
    assert [(e["s"], e["m"], e["x"]["item"]) for e in votes["e"]] == [(i + 1, f"t{i}", str(10 + i % 2))
                                                                      for i in range(6)]
    assert all("e" not in a for a in lines if a["k"] != "vote")  # plays stay counts


@pytest.mark.parametrize("change, reason", [
    (lambda a: a.update(e=a["e"][:-1]), "n events"),  # fewer kept than counted
    (lambda a: a.update(e="nope"), "n events"),
    (lambda a: a.update(k="play_start"), "tally kind"),  # only tally kinds may keep events
    (lambda a: a["e"][0].update(s="1"), "s (integer)"),
    (lambda a: a["e"][0].update(t=float("nan")), "t (number)"),
    (lambda a: a["e"][0].update(x=[1]), "x (object)"),
    (lambda a: a["e"][0].pop("m"), "m (string)"),
])
def test_hostile_kept_events_are_refused(change, reason):
    header, events = _votes_batch()
    agg = B.summarise(header, events)
    change(next(a for a in agg if a["k"] == "vote"))
    data = B.seal_bytes(NODE, 1, agg, first_seq=1, last_seq=7, count=7, kind="daily")
    with pytest.raises(B.BatchError):
        B.read_batch(data)
