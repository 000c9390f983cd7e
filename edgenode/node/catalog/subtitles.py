"""Subtitles: WebVTT or SRT in, one clean WebVTT out, or a :class:`SubtitleError`.

A subtitle file comes from a signed bundle but is still treated as untrusted
text shown inside the portal's pages: everything is rebuilt from the parsed
cues, never copied through.  Kept are the timings and the cue text with every
tag removed and ``& < >`` escaped; dropped are cue settings, ``NOTE``,
``STYLE`` (CSS) and ``REGION`` blocks, cues whose timing is impossible, and
control characters.  Refused: files over the size cap, text that is neither
UTF-8 nor GB 18030 (what Chinese SRT files are often saved as), too many
cues, and files in which no cue survives.
"""

from __future__ import annotations

import html
import re

from edgenode.core.errors import EdgenodeError
from edgenode.protocol.bundle import MAX_SUBTITLE_BYTES

MAX_CUES = 20_000
MAX_CUE_CHARS = 500
MAX_SECONDS = 48 * 3600
_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_TAG = re.compile(r"<[^<>]{0,200}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class SubtitleError(EdgenodeError):
    def __init__(self, code: str, message: str):
        zh = "字幕文件太大，未导入" if code == "E_SUBTITLE_TOO_LARGE" else "字幕文件格式不正确，未导入"
        super().__init__(code, message, zh=zh)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break  # UTF-16 or binary that happened to decode
        return text
    raise SubtitleError("E_SUBTITLE_INVALID", "not UTF-8 or GB 18030 text")


def _seconds(h, m, s, ms) -> float | None:
    if int(m) > 59 or int(s) > 59:
        return None
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _stamp(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _clean(lines: list[str]) -> str:
    text = "\n".join(lines)
    text = _TAG.sub("", text)                      # <i>, <c.yellow>, <v Speaker>, <script>…: all removed
    text = html.unescape(text)                     # &lt;script&gt; must not come back as a tag either
    text = _TAG.sub("", text)
    text = _CONTROL.sub("", text)
    text = "\n".join(ln.strip() for ln in text.split("\n") if ln.strip() and "-->" not in ln)
    return html.escape(text[:MAX_CUE_CHARS], quote=False)


def _cues(text: str) -> list[tuple[float, float, str]]:
    out = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip("\n").split("\n")
        at = next((i for i, ln in enumerate(lines[:3]) if _TIMING.match(ln)), None)
        if at is None:
            continue  # WEBVTT header, NOTE, STYLE, REGION, an SRT counter alone, junk
        m = _TIMING.match(lines[at])
        start, end = _seconds(*m.group(1, 2, 3, 4)), _seconds(*m.group(5, 6, 7, 8))
        if start is None or end is None or not 0 <= start < end <= MAX_SECONDS:
            continue
        cue = _clean(lines[at + 1:])
        if cue:
            out.append((start, end, cue))
            if len(out) > MAX_CUES:
                raise SubtitleError("E_SUBTITLE_INVALID", f"more than {MAX_CUES} cues")
    return out


def to_webvtt(data: bytes) -> bytes:
    """Clean WebVTT bytes from WebVTT or SRT bytes; raises SubtitleError (stable codes)."""
    if len(data) > MAX_SUBTITLE_BYTES:
        raise SubtitleError("E_SUBTITLE_TOO_LARGE", f"{len(data)} bytes; the limit is {MAX_SUBTITLE_BYTES}")
    cues = _cues(_decode(data))
    if not cues:
        raise SubtitleError("E_SUBTITLE_INVALID", "no readable cue (expected WebVTT or SRT timings "
                            "such as 00:00:01.000 --> 00:00:03.000)")
    cues.sort(key=lambda c: (c[0], c[1]))
    body = "".join(f"{_stamp(s)} --> {_stamp(e)}\n{t}\n\n" for s, e, t in cues)
    return ("WEBVTT\n\n" + body).encode("utf-8")
