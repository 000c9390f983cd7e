"""The live schedule (直播预告) and the HLS playlists node and hub agree on.

A schedule is a list of broadcasts, each ``{"id", "title", "description",
"start", "end", "stream_url", "poster"}`` (times as ISO 8601 with a UTC offset,
or epoch seconds).  It travels three ways, always signed by a publisher key the
node trusts for the schedule's channel:

* in a bundle: the manifest's top-level ``"live"`` list (the manifest's
  signature covers it; the channel is the bundle's);
* as a standalone document ``{"format", "channel", "seq", "created",
  "broadcasts"}`` plus its minisign signature: in heartbeat answers and as
  ``edgenode-live/<channel>.json`` (+ ``.minisig``) on a stick;
* for the county, ``edgenode hub live schedule`` writes and signs that document.

Playlists: only the subset of HLS (RFC 8216) a media playlist of MPEG-TS
segments needs, parsed with hard caps, because a hostile or broken origin must
not make a node fetch without end.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from edgenode.core.errors import EdgenodeError
from edgenode.protocol import strictjson

FORMAT = "edgenode-live-schedule/1"
FIELDS = {"id", "title", "description", "start", "end", "stream_url", "poster", "cancelled"}
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_BROADCASTS = 200
MAX_HOURS = 12           # one broadcast's window
MAX_DOC_BYTES = 256 * 1024
MAX_PLAYLIST_BYTES = 512 * 1024
MAX_PLAYLIST_SEGMENTS = 20000   # 11 hours of 2-second segments; more is a playlist that never ends


class LiveError(EdgenodeError):
    """A schedule or playlist refused: a stable code and the Chinese the admin page shows."""

    def __init__(self, code: str, message: str, zh: str):
        super().__init__(code, message, zh=zh, status=400)


def schedule_error(message: str) -> LiveError:
    return LiveError("E_LIVE_SCHEDULE", message, "直播预告格式有误，未采用")


def _when(value, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is not None:
            return dt.timestamp()
    raise schedule_error(f"{what}: expected ISO 8601 with a UTC offset (2026-12-07T19:30+08:00) or epoch seconds")


def _text(e: dict, key: str, i: int, limit: int, required: bool = True) -> str:
    v = e.get(key, "")
    if not isinstance(v, str) or len(v) > limit or (required and not v.strip()):
        raise schedule_error(f"broadcasts[{i}].{key}: {'required ' if required else ''}text of at most {limit} "
                             "characters")
    return v.strip()


def _url(value, what: str) -> str:
    if not isinstance(value, str) or len(value) > 1000:
        raise schedule_error(f"{what}: expected a URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise schedule_error(f"{what}: expected an http(s) URL without credentials")
    return value


def parse_broadcasts(entries, channel: str) -> list[dict]:
    """Checked broadcasts ``{"key": "<channel>.<id>", "channel", "id", ...}``: fields, times, no two
    windows of the channel overlapping (``E_LIVE_OVERLAP``)."""
    if not isinstance(entries, list) or len(entries) > MAX_BROADCASTS:
        raise schedule_error(f"broadcasts must be a list of at most {MAX_BROADCASTS}")
    out, seen = [], set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or set(e) - FIELDS:
            raise schedule_error(f"broadcasts[{i}]: not an object or unknown fields")
        bid = e.get("id")
        if not isinstance(bid, str) or not ID_RE.match(bid) or bid in seen:
            raise schedule_error(f"broadcasts[{i}].id: lower-case letters, digits, - and _, unique")
        seen.add(bid)
        start, end = _when(e.get("start"), f"broadcasts[{i}].start"), _when(e.get("end"), f"broadcasts[{i}].end")
        if not start < end <= start + MAX_HOURS * 3600:
            raise schedule_error(f"broadcasts[{i}]: end must be after start, within {MAX_HOURS} hours")
        poster = e.get("poster")
        out.append({"key": f"{channel}.{bid}", "channel": channel, "id": bid,
                    "title": _text(e, "title", i, 200), "description": _text(e, "description", i, 4000, False),
                    "start": start, "end": end, "stream_url": _url(e.get("stream_url"), f"broadcasts[{i}].stream_url"),
                    "poster": _url(poster, f"broadcasts[{i}].poster") if poster else None,
                    "cancelled": e.get("cancelled") is True})
    check_overlap(out)
    return out


def check_overlap(broadcasts: list[dict]) -> None:
    """One reading room shows one broadcast at a time: windows of a channel must not overlap."""
    live = sorted((b for b in broadcasts if not b.get("cancelled")), key=lambda b: b["start"])
    for a, b in zip(live, live[1:]):
        if b["start"] < a["end"]:
            raise LiveError("E_LIVE_OVERLAP", f"broadcasts {a['key']} and {b['key']} overlap",
                            f"直播预告的时间有重叠（{a['title']} 与 {b['title']}），未采用")


def check_origin(url: str, origins: list[str]) -> None:
    """A stream (or poster) URL must start with one of the configured origins (``live.origins``)."""
    if not any(url.startswith(o) for o in origins if o):
        raise LiveError("E_LIVE_ORIGIN", f"{url} is not under a configured live origin "
                        f"({', '.join(origins) or 'none configured'})", "直播地址不在允许的来源之内，未采用")


def parse_document(data: bytes) -> dict:
    """A standalone schedule document (its signature already checked by the caller)."""
    if len(data) > MAX_DOC_BYTES:
        raise schedule_error(f"schedule larger than {MAX_DOC_BYTES} bytes")
    try:
        doc = strictjson.loads(data)
    except Exception as e:  # strictjson names duplicate keys, NaN, bad UTF-8
        raise schedule_error(f"not strict JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise schedule_error(f"format must be {FORMAT!r}")
    channel, seq = doc.get("channel"), doc.get("seq")
    if not isinstance(channel, str) or not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", channel):
        raise schedule_error("channel: lower-case letters, digits, - and _")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise schedule_error("seq: a positive integer, higher for every new schedule")
    return {"channel": channel, "seq": seq, "broadcasts": parse_broadcasts(doc.get("broadcasts"), channel)}


def make_document(channel: str, seq: int, broadcasts: list[dict], created: float | None = None) -> bytes:
    """The publisher's side: the document bytes to sign (checked with the node's rules first)."""
    import json
    doc = {"format": FORMAT, "channel": channel, "seq": seq, "created": int(created or time.time()),
           "broadcasts": broadcasts}
    data = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    parse_document(data)
    return data


# -- playlists ---------------------------------------------------------------
@dataclass
class Segment:
    seq: int
    uri: str          # absolute URL
    duration: float
    discontinuity: bool = False


@dataclass
class Playlist:
    target: float
    media_sequence: int
    ended: bool
    segments: list[Segment] = field(default_factory=list)


def playlist_error(message: str) -> LiveError:
    return LiveError("E_LIVE_PLAYLIST", message, "直播信号的播放列表有误")


def parse_playlist(text: str, base_url: str) -> Playlist:
    """A media playlist; ``E_LIVE_PLAYLIST`` for a master playlist, encryption, or any cap exceeded."""
    if len(text.encode("utf-8")) > MAX_PLAYLIST_BYTES:
        raise playlist_error(f"playlist larger than {MAX_PLAYLIST_BYTES} bytes")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise playlist_error("not an HLS playlist (#EXTM3U missing)")
    pl = Playlist(target=0.0, media_sequence=0, ended=False)
    duration, disc = None, False
    for ln in lines[1:]:
        tag, _, value = ln.partition(":")
        if tag == "#EXT-X-TARGETDURATION":
            pl.target = _number(value, tag)
        elif tag == "#EXT-X-MEDIA-SEQUENCE":
            pl.media_sequence = int(_number(value, tag))
        elif tag == "#EXT-X-ENDLIST":
            pl.ended = True
        elif tag == "#EXT-X-DISCONTINUITY":
            disc = True
        elif tag in ("#EXT-X-STREAM-INF", "#EXT-X-KEY", "#EXT-X-MAP", "#EXT-X-BYTERANGE"):
            raise playlist_error(f"{tag} is not supported (one media playlist of whole MPEG-TS segments)")
        elif tag == "#EXTINF":
            duration = _number(value.split(",")[0], tag)
        elif not ln.startswith("#"):
            if duration is None:
                raise playlist_error(f"segment {ln!r} without #EXTINF")
            if len(pl.segments) >= MAX_PLAYLIST_SEGMENTS:
                raise playlist_error(f"more than {MAX_PLAYLIST_SEGMENTS} segments: cut off")
            pl.segments.append(Segment(pl.media_sequence + len(pl.segments), urljoin(base_url, ln), duration, disc))
            duration, disc = None, False
    if pl.target <= 0 or pl.target > 30:
        raise playlist_error("#EXT-X-TARGETDURATION missing or above 30 s")
    return pl


def _number(value: str, tag: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise playlist_error(f"{tag}: not a number") from None
    if not 0 <= v < 1e9:
        raise playlist_error(f"{tag}: out of range")
    return v
