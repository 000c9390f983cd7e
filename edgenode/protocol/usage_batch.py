"""Sealed usage batches: the unit the node uplinks and the hub ingests (protocol v1).

A batch is gzip of JSON Lines.  Line 1 is the header; each following line is
one event in compact form (``kind: "events"``) or one daily aggregate
(``kind: "daily"``, made when the outbox cap summarises an old batch).  Keys
are sorted and separators compact so consecutive lines share long prefixes:
realistic events gzip to about 15 bytes each.

Beside the file, ``<name>.sig`` holds the node's Ed25519 signature (base64)
over :func:`batch_message`.  The hub imports :func:`read_batch` and
:func:`batch_message` from here, so both ends parse and sign identically.

The header may carry ``titles``: ``{resource id: title}`` for the resources its
lines name, taken from the node's catalogue when sealing, so county reports can
name resources the hub never published.  A hub that does not know the key ignores it.

For a ``daily`` batch the header's ``count`` is the number of events the
aggregates stand for (the sum of ``n``), and ``first_seq``/``last_seq`` are
the range of the events batch it replaced (same ``batch_no``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import zlib
from datetime import datetime, timedelta, timezone
from typing import Iterable

from edgenode.core.errors import EdgenodeError
from edgenode.protocol.figures import ANONYMOUS

VERSION = 1
KINDS = ("events", "daily")
GZIP_LEVEL = 5  # ~15 bytes per realistic event; 6 saves 4% more for 35% more CPU, 1 gives ~20
MAX_BATCH_BYTES = 64 * 1024 * 1024  # a larger file is refused before decompressing
MAX_PLAIN_BYTES = 512 * 1024 * 1024  # gzip bomb guard
HEADER_KEYS = ("v", "node_id", "batch_no", "first_seq", "last_seq", "count", "sealed_at", "kind")
EVENT_KEYS = ("c", "d", "k", "m", "r", "s", "t", "x")
EVENT_KEYSET = frozenset(EVENT_KEYS)
NUMBERS = (int, float)  # type() in NUMBERS: a bool is not a number here
INF = float("inf")
MAX_TIME = 4102444800.0  # 2100-01-01: a wilder clock reading is clamped, never sent as is
DAILY_KEYS = ("c", "d", "day", "k", "n", "r", "u")
MAX_TITLE = 200  # characters; longer titles are cut when sealing
MAX_ID = 128


class BatchError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_BATCH_FORMAT", message, zh="统计数据包格式错误：" + message, status=400)


def batch_name(node_id: str, batch_no: int) -> str:
    return f"{node_id}-{batch_no:012d}.batch"


def batch_message(node_id: str, batch_no: int, sha256hex: str) -> bytes:
    """The bytes the node signs and the hub verifies for one batch."""
    return f"{node_id}:{int(batch_no)}:{sha256hex}".encode()


def sha256hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign_batch(identity, batch_no: int, data: bytes) -> str:
    """Base64 signature for the ``.sig`` file."""
    sig = identity.sign(batch_message(identity.node_id, batch_no, sha256hex(data)))
    return base64.b64encode(sig).decode()


def verify_batch(public_key_b64: str, node_id: str, batch_no: int, data: bytes, sig_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(base64.b64decode(sig_b64.strip(), validate=True), batch_message(node_id, batch_no, sha256hex(data)))
        return True
    except (InvalidSignature, ValueError):
        return False


# -- encoding ------------------------------------------------------------------------------------

def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _num(x: float) -> str:
    # Always a float ("15.0"), milliseconds at most: sub-ms digits are noise that gzip cannot shrink.
    return repr(round(float(x), 3))


def event_lines(rows: Iterable) -> list[str]:
    """Compact event lines from ``usage_events`` rows (seq, at, kind, terminal, resource_id,
    column_key, seconds, data), in seq order, with the same clamping as the outbox's SQL
    (``edgenode.node.sync.outbox.EVENT_LINE_SQL``, which the node uses: it is faster)."""
    cache: dict = {None: "null"}

    def s(v):
        out = cache.get(v)
        if out is None:
            out = cache[v] = json.dumps(v, ensure_ascii=False)
        return out

    lines = []
    append = lines.append
    for seq, at, kind, terminal, resource_id, column_key, seconds, data in rows:
        d = round(min(max(float(seconds), 0.0), 86400.0), 3)
        append(f'{{"c":{cache.get(column_key) or s(column_key)},"d":{d!r},"k":{cache.get(kind) or s(kind)},'
               f'"m":{cache.get(terminal) or s(terminal)},"r":{cache.get(resource_id) or s(resource_id)},'
               f'"s":{int(seq)},"t":{round(min(max(float(at), 0.0), MAX_TIME), 3)!r},"x":{_extra(data)}}}')
    return lines


def _extra(data) -> str:
    # Only a JSON object travels as "x"; anything else would make the hub refuse the whole batch.
    if not data:
        return "null"
    try:
        value = json.loads(data) if isinstance(data, str) else data
    except ValueError:
        return "null"
    return _dumps(value) if isinstance(value, dict) else "null"


def seal_bytes(node_id: str, batch_no: int, lines: list[str] | list[dict], *, first_seq: int, last_seq: int,
               count: int | None = None, kind: str = "events", sealed_at: float | None = None,
               titles: dict[str, str] | None = None) -> bytes:
    """The gzip bytes of one batch.  ``lines`` are pre-formatted strings or dicts; ``titles``
    names the resources they mention (optional header key)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    body = [ln if isinstance(ln, str) else _dumps(ln) for ln in lines]
    header = {"v": VERSION, "node_id": node_id, "batch_no": int(batch_no), "first_seq": int(first_seq),
              "last_seq": int(last_seq), "count": len(body) if count is None else int(count),
              "sealed_at": round(sealed_at if sealed_at is not None else time.time(), 3), "kind": kind}
    clean = {k: v.strip()[:MAX_TITLE] for k, v in (titles or {}).items()
             if isinstance(k, str) and 0 < len(k) <= MAX_ID and isinstance(v, str) and v.strip()}
    if clean:
        header["titles"] = clean
    text = "\n".join([_dumps(header), *body]) + "\n"
    # mtime=0: the same content always gives the same bytes, so a re-seal after a crash is
    # byte-identical and the hub answers "duplicate", never "conflict".
    return gzip.compress(text.encode(), GZIP_LEVEL, mtime=0)


# -- decoding ------------------------------------------------------------------------------------

def _gunzip(data: bytes) -> bytes:
    if len(data) > MAX_BATCH_BYTES:
        raise BatchError(f"batch is {len(data)} bytes; the limit is {MAX_BATCH_BYTES}")
    if not data:
        raise BatchError("not gzip data: empty body")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, MAX_PLAIN_BYTES + 1)
    except zlib.error as e:
        raise BatchError(f"not gzip data: {e}") from None
    if len(out) > MAX_PLAIN_BYTES or d.unconsumed_tail:
        raise BatchError("batch expands beyond the size limit")
    if not d.eof:
        raise BatchError("gzip data is truncated")
    return out


def peek_header(data: bytes) -> dict:
    """The header line only (no checks): for counting what an outbox or a stick holds."""
    text = zlib.decompressobj(wbits=31).decompress(data, 65536)
    return json.loads(text.split(b"\n", 1)[0])


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num_ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_header(h) -> dict:
    if not isinstance(h, dict):
        raise BatchError("header is not an object")
    missing = [k for k in HEADER_KEYS if k not in h]
    if missing:
        raise BatchError("header lacks " + ", ".join(missing))
    if h["v"] != VERSION:
        raise BatchError(f"unsupported batch version {h['v']!r}")
    if h["kind"] not in KINDS:
        raise BatchError(f"unknown batch kind {h['kind']!r}")
    if not isinstance(h["node_id"], str) or not h["node_id"]:
        raise BatchError("header node_id must be a non-empty string")
    for k in ("batch_no", "first_seq", "last_seq", "count"):
        if not _int(h[k]) or h[k] < 0:
            raise BatchError(f"header {k} must be a non-negative integer")
    if h["last_seq"] < h["first_seq"]:
        raise BatchError("header last_seq is below first_seq")
    if not _num_ok(h["sealed_at"]):
        raise BatchError("header sealed_at must be a number")
    titles = h.get("titles", {})
    if not isinstance(titles, dict) or not all(
            isinstance(k, str) and 0 < len(k) <= MAX_ID and isinstance(v, str) and 0 < len(v) <= MAX_TITLE
            for k, v in titles.items()):
        raise BatchError(f"header titles must map resource ids (at most {MAX_ID} characters) to titles "
                         f"(1 to {MAX_TITLE} characters)")
    return h


def _check_events(events: list, h: dict) -> None:
    """One pass with cheap type() checks: the hub runs this for every event it ingests."""
    prev, lo, hi = h["first_seq"] - 1, h["first_seq"], h["last_seq"]
    for e in events:
        if type(e) is not dict or not e.keys() >= EVENT_KEYSET:
            raise BatchError("event line lacks keys")
        s, t, d = e["s"], e["t"], e["d"]
        if type(s) is not int or s <= prev or s > hi:
            raise BatchError(f"event seq {s!r} out of order or outside {lo}..{hi}")
        if type(t) not in NUMBERS or type(d) not in NUMBERS or not -INF < t < INF or not 0 <= d < INF:
            raise BatchError(f"event {s}: t and d must be finite numbers, d not negative")
        if type(e["k"]) is not str or type(e["m"]) is not str:
            raise BatchError(f"event {s}: k and m must be strings")
        r, c, x = e["r"], e["c"], e["x"]
        if (r is not None and type(r) is not str) or (c is not None and type(c) is not str):
            raise BatchError(f"event {s}: r and c must be strings or null")
        if x is not None and type(x) is not dict:
            raise BatchError(f"event {s}: x must be an object or null")
        prev = s


TALLY_KINDS = ("vote", "request", "feedback")  # meaning in x: kept whole when a batch is summarised


def _check_daily(a) -> int:
    if not isinstance(a, dict) or any(k not in a for k in DAILY_KEYS):
        raise BatchError("daily line lacks keys")
    try:
        datetime.strptime(a["day"], "%Y-%m-%d")
    except (TypeError, ValueError):
        raise BatchError(f"daily line: bad day {a['day']!r}") from None
    if not _int(a["n"]) or a["n"] < 1 or not _int(a["u"]) or not 0 <= a["u"] <= a["n"]:
        raise BatchError("daily line: n must be a positive integer and u between 0 and n")
    if not _num_ok(a["d"]) or a["d"] < 0 or not isinstance(a["k"], str):
        raise BatchError("daily line: d must be a non-negative number and k a string")
    for k in ("r", "c"):
        if a[k] is not None and not isinstance(a[k], str):
            raise BatchError(f"daily line: {k} must be a string or null")
    if "e" in a:  # tally events kept whole (see summarise): exactly the n events counted, each well-formed
        kept = a["e"]
        if a["k"] not in TALLY_KINDS or not isinstance(kept, list) or len(kept) != a["n"]:
            raise BatchError("daily line: e must list the line's n events of a tally kind")
        for e in kept:
            if not isinstance(e, dict) or not _int(e.get("s")) or not _num_ok(e.get("t")) or not -INF < e["t"] < INF \
                    or not isinstance(e.get("m"), str) or not (e.get("x") is None or isinstance(e.get("x"), dict)):
                raise BatchError("daily line: a kept event needs s (integer), t (number), m (string), x (object)")
    return a["n"]


def read_batch(data: bytes) -> tuple[dict, list[dict]]:
    """Parse and check a batch: ``(header, lines)``.  Raises :class:`BatchError` (E_BATCH_FORMAT).

    Checks the structure only; signatures are checked by the caller with
    :func:`batch_message` (or :func:`verify_batch`).
    """
    text = _gunzip(data)
    try:
        raw = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise BatchError("batch is not UTF-8 text") from None
    if not raw:
        raise BatchError("batch is empty")
    try:
        header = _check_header(json.loads(raw[0]))
    except json.JSONDecodeError as e:
        raise BatchError(f"the header line is not JSON: {e.msg}") from None
    body = [ln for ln in raw[1:] if ln]
    try:
        # One parse for the whole body (lines joined as a JSON array) is ~3x faster than one per line;
        # a line that is not one JSON value on its own is caught below.
        lines = json.loads("[" + ",".join(body) + "]")
    except json.JSONDecodeError:
        lines = None
    if lines is None or len(lines) != len(body):
        try:
            lines = [json.loads(ln) for ln in body]
        except json.JSONDecodeError as e:
            raise BatchError(f"a line is not JSON: {e.msg}") from None
    if header["kind"] == "events":
        _check_events(lines, header)
        if len(lines) != header["count"]:
            raise BatchError(f"header count {header['count']} but {len(lines)} events")
    else:
        total = sum(_check_daily(a) for a in lines)
        if total != header["count"]:
            raise BatchError(f"header count {header['count']} but the aggregates sum to {total}")
    return header, lines


# -- daily aggregates ----------------------------------------------------------------------------

def summarise(header: dict, events: list[dict], *, offset_hours: float = 8.0) -> list[dict]:
    """Daily aggregates of one events batch, keyed by (local day, resource, column, kind).

    The day is a calendar day in the statistics time zone (``hub.utc_offset_hours``,
    China Standard Time by default), the same zone the hub counts its days in, so a
    summarised batch lands on the same days as its events would have.

    Events of the ``TALLY_KINDS`` (votes, requests, feedback) carry their meaning in
    ``x`` (which campaign and item, what text): a count alone would lose it, so their
    aggregate line also keeps each one whole under ``"e"`` (``s``, ``t``, ``m``, ``x``).
    They are a handful a day, so this costs the cap nothing.
    """
    groups: dict[tuple, list] = {}
    zone = timezone(timedelta(hours=offset_hours))
    for e in events:
        day = datetime.fromtimestamp(e["t"], zone).strftime("%Y-%m-%d")
        g = groups.setdefault((day, e["r"], e["c"], e["k"]), [0, 0.0, set(), []])
        g[0] += 1
        g[1] += e["d"]
        if e["m"] != ANONYMOUS:  # a cookie-less request is no terminal (protocol/figures.py)
            g[2].add(e["m"])
        if e["k"] in TALLY_KINDS:
            g[3].append({"s": e["s"], "t": e["t"], "m": e["m"], "x": e["x"]})
    out = []
    for (day, r, c, k), (n, d, terms, kept) in sorted(groups.items(), key=lambda kv: tuple(
            "" if x is None else x for x in kv[0])):
        line = {"day": day, "r": r, "c": c, "k": k, "n": n, "d": round(d, 3), "u": len(terms)}
        if kept:
            line["e"] = kept
        out.append(line)
    return out
