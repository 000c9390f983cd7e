"""The bundle format: manifest parsing and path rules (see docs/bundle-format.md).

Everything here is pure: bytes in, a :class:`Manifest` or a :class:`BundleError`
out.  The parser is fuzzed by ``tests/test_bundles_fuzz.py``; any input must end
in one of the two, never in another exception.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

from edgenode.protocol import strictjson
from edgenode.protocol.metadata import EXT_KIND, KINDS, MetadataError, validate_id, validate_metadata, validate_series
from edgenode.core.errors import EdgenodeError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.minisig"
KEYLIST = "keys.json"
KEYLIST_SIG = "keys.json.minisig"
STICK_FOLDER = "edgenode-bundles"  # the one folder read on a USB stick (matched ignoring case)

CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
ENTRY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
KEY_ID_RE = re.compile(r"^[0-9A-Fa-f]{1,16}$")  # minisign prints ids without leading zeros
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
MAX_RESOURCES = 10_000
MAX_SIZE = 2 ** 50
MAX_SEQ = 2 ** 53
TOP_FIELDS = {"format", "channel", "seq", "created", "expires", "key_id", "resources", "withdraw", "series",
              "activities", "campaigns",  # edgenode/node/activities/published.py
              "screenings",  # edgenode/node/tv/published.py
              "live"}  # edgenode/node/live/schedule.py
ENTRY_FIELDS = {"id", "path", "size", "sha256", "title", "description", "column", "tags", "kind", "language",
                "series", "season", "episode", "subtitles"}
SUBTITLE_FIELDS = {"path", "size", "sha256", "language", "label", "default"}
SUBTITLE_EXTS = ("vtt", "srt")
MAX_SUBTITLE_BYTES = 2 * 1024 * 1024  # hours of dialogue are ~100 KB; more is not a subtitle file
MAX_SUBTITLES = 8
MAX_EPISODE = 100_000
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")


class BundleError(EdgenodeError):
    """A bundle refused; ``code`` is stable (see docs/import.md)."""

    def __init__(self, code: str, message: str, zh: str = "内容包有误，未导入"):
        super().__init__(code, message, zh=zh)


@dataclass(frozen=True)
class Entry:
    id: str           # as in the manifest
    path: str         # relative POSIX path inside the bundle
    size: int
    sha256: str
    kind: str
    ext: str
    meta: dict        # validated: title, description, column, tags, language
    series: str | None = None    # a series id of this manifest's ``series`` list
    season: int | None = None
    episode: int | None = None
    subtitles: tuple = ()        # of Subtitle


@dataclass(frozen=True)
class Subtitle:
    path: str
    size: int
    sha256: str
    language: str
    label: str
    default: bool


@dataclass(frozen=True)
class Manifest:
    format: int
    channel: str
    seq: int
    created: str
    expires: str | None
    key_id: str
    entries: list[Entry]
    withdraw: list[str] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)  # validated by metadata.validate_series

    def catalog_id(self, entry_id: str) -> str:
        return f"{self.channel}.{entry_id}"

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def expired(self, now: datetime | None = None) -> bool:
        if not self.expires:
            return False
        return (now or datetime.now(timezone.utc)) > parse_time(self.expires, "expires")


def _invalid(message: str) -> BundleError:
    return BundleError("E_MANIFEST_INVALID", f"manifest: {message}", zh="内容包清单格式不正确，未导入")


def parse_time(value, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _invalid(f"{name}: must be an ISO 8601 time")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"{name}: must be an ISO 8601 time, not {value[:40]!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _int(value, name: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _invalid(f"{name}: must be an integer from {lo} to {hi}")
    return value


def check_path(path) -> str:
    """A safe relative path, or BundleError E_BAD_PATH naming the problem."""
    def bad(why: str) -> BundleError:
        return BundleError("E_BAD_PATH", f"path {str(path)[:80]!r}: {why}", zh="内容包里有不安全的文件路径，未导入")

    if not isinstance(path, str) or not path:
        raise bad("must be a non-empty string")
    if _BAD_CHARS.search(path):
        raise bad("backslashes, NUL and control characters are not allowed")
    if path.startswith("/"):
        raise bad("must be relative")
    if len(path.encode("utf-8", "surrogatepass")) > 1024:
        raise bad("longer than 1024 bytes")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise bad("not valid UTF-8") from None
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise bad("empty, '.' and '..' components are not allowed")
        if len(part.encode("utf-8")) > 255:
            raise bad("a component is longer than 255 bytes")
    if path in (MANIFEST, SIGNATURE, KEYLIST, KEYLIST_SIG):
        raise bad("names a control file of the bundle")
    return path


def _entry(raw, i: int) -> Entry:
    if not isinstance(raw, dict):
        raise _invalid(f"resources[{i}]: must be an object")
    unknown = set(raw) - ENTRY_FIELDS
    if unknown:
        raise _invalid(f"resources[{i}]: unknown field(s) {', '.join(sorted(map(str, unknown)))[:80]}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not ENTRY_ID_RE.match(rid):
        raise _invalid(f"resources[{i}].id: use 1-96 letters, digits, '.', '_' or '-'")
    path = check_path(raw.get("path"))
    size = _int(raw.get("size"), f"resources[{i}].size", 1, MAX_SIZE)
    sha = raw.get("sha256")
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise _invalid(f"resources[{i}].sha256: must be 64 lower-case hex digits")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise _invalid(f"resources[{i}].kind: must be one of {', '.join(KINDS)}")
    ext = path.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if EXT_KIND.get(ext) != kind:
        raise BundleError("E_METADATA", f"resources[{i}] ({rid}): a .{ext} file cannot be of kind {kind!r}",
                          zh="资源类型与文件格式不符")
    for name in ("title", "description", "column", "language"):
        if raw.get(name) is not None and not isinstance(raw.get(name), str):
            raise BundleError("E_METADATA", f"resources[{i}] ({rid}): {name} must be text", zh=f"{name} 必须是文字")
    tags = raw.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise BundleError("E_METADATA", f"resources[{i}] ({rid}): tags must be a list of text", zh="标签格式不正确")
    try:
        meta = validate_metadata({k: raw.get(k) for k in ("title", "description", "column", "tags", "language")})
    except MetadataError as e:
        raise BundleError("E_METADATA", f"resources[{i}] ({rid}): {e.message}", zh=e.zh) from None
    series, season, episode = _episode(raw, i, rid)
    subs = tuple(_subtitle(s, f"resources[{i}].subtitles[{j}]") for j, s in enumerate(_sub_list(raw, i, kind)))
    return Entry(rid, path, size, sha, kind, ext, meta, series, season, episode, subs)


def _episode(raw: dict, i: int, rid: str) -> tuple:
    """(series, season, episode) of an entry: all absent, or a series id with an episode number."""
    series = raw.get("series")
    if series is None:
        if raw.get("season") is not None or raw.get("episode") is not None:
            raise _invalid(f"resources[{i}] ({rid}): season and episode need a series")
        return None, None, None
    if not isinstance(series, str) or not ENTRY_ID_RE.match(series):
        raise _invalid(f"resources[{i}].series: use 1-96 letters, digits, '.', '_' or '-'")
    season = raw.get("season")
    season = None if season is None else _int(season, f"resources[{i}].season", 1, 1000)
    return series, season, _int(raw.get("episode"), f"resources[{i}].episode", 1, MAX_EPISODE)


def _sub_list(raw: dict, i: int, kind: str) -> list:
    subs = raw.get("subtitles")
    if subs is None:
        return []
    if not isinstance(subs, list) or len(subs) > MAX_SUBTITLES:
        raise _invalid(f"resources[{i}].subtitles: must be a list of at most {MAX_SUBTITLES}")
    if subs and kind not in ("video", "audio"):
        raise _invalid(f"resources[{i}].subtitles: only videos and audio carry subtitles")
    return subs


def _subtitle(raw, where: str) -> Subtitle:
    if not isinstance(raw, dict) or set(raw) - SUBTITLE_FIELDS:
        raise _invalid(f"{where}: must be an object with {', '.join(sorted(SUBTITLE_FIELDS))}")
    path = check_path(raw.get("path"))
    if path.rpartition(".")[2].lower() not in SUBTITLE_EXTS:
        raise BundleError("E_SUBTITLE_INVALID", f"{where}: {path[:80]!r} is not a .vtt or .srt file",
                          zh="字幕文件格式不正确，未导入")
    size = _int(raw.get("size"), f"{where}.size", 1, MAX_SIZE)
    if size > MAX_SUBTITLE_BYTES:
        raise BundleError("E_SUBTITLE_TOO_LARGE", f"{where}: {size} bytes; the limit is {MAX_SUBTITLE_BYTES}",
                          zh="字幕文件太大，未导入")
    sha = raw.get("sha256")
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise _invalid(f"{where}.sha256: must be 64 lower-case hex digits")
    lang = raw.get("language")
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        raise _invalid(f"{where}.language: a language tag such as zh, zh-Hans or en")
    label = raw.get("label") or lang
    if not isinstance(label, str) or len(label) > 40 or _BAD_CHARS.search(label):
        raise _invalid(f"{where}.label: up to 40 characters of text")
    default = raw.get("default", False)
    if not isinstance(default, bool):
        raise _invalid(f"{where}.default: true or false")
    return Subtitle(path, size, sha, lang, label.strip() or lang, default)


def _series(doc: dict, entries: list[Entry]) -> list[dict]:
    raw = doc.get("series") or []
    if not isinstance(raw, list) or len(raw) > MAX_RESOURCES:
        raise _invalid("series: must be a list of series")
    out = {}
    for i, s in enumerate(raw):
        try:
            meta = validate_series(s)
        except MetadataError as e:
            raise BundleError("E_METADATA", f"series[{i}]: {e.message}", zh=e.zh) from None
        if meta["id"] in out:
            raise BundleError("E_DUPLICATE_ENTRY", f"series {meta['id']!r} is listed twice", zh="内容包清单里有重复的系列，未导入")
        out[meta["id"]] = meta
    seen = set()
    for e in entries:
        if e.series is None:
            continue
        if e.series not in out:
            raise _invalid(f"{e.id}: series {e.series!r} is not in the manifest's series list")
        key = (e.series, e.season or 1, e.episode)
        if key in seen:
            raise BundleError("E_DUPLICATE_ENTRY", f"{e.id}: series {e.series!r} has two episode {e.episode}s "
                              f"in season {e.season or 1}", zh="同一系列里有重复的集数，未导入")
        seen.add(key)
    return list(out.values())


def parse_manifest(data: bytes, *, max_bytes: int = 4 * 1024 * 1024) -> Manifest:
    """Parse and validate manifest bytes; raise BundleError with a stable code."""
    if len(data) > max_bytes:
        raise BundleError("E_MANIFEST_TOO_LARGE", f"manifest is {len(data)} bytes; the limit is {max_bytes}",
                          zh="内容包清单太大，未导入")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("not UTF-8 text") from None
    try:
        doc = strictjson.loads(text)
    except (ValueError, RecursionError) as e:
        raise _invalid(f"not valid JSON: {str(e)[:80]}") from None
    if not isinstance(doc, dict):
        raise _invalid("must be a JSON object")
    version = doc.get("format")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise BundleError("E_FORMAT_VERSION", f"manifest format {str(version)[:20]!r} is not supported "
                          f"(this node reads format {FORMAT_VERSION}); update edgenode",
                          zh="内容包格式版本不受支持，请升级本机软件")
    unknown = set(doc) - TOP_FIELDS
    if unknown:
        raise _invalid(f"unknown field(s) {', '.join(sorted(unknown))[:80]}")
    channel = doc.get("channel")
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
        raise _invalid("channel: use 1-32 lower-case letters, digits, '_' or '-'")
    seq = _int(doc.get("seq"), "seq", 1, MAX_SEQ)
    created = doc.get("created")
    parse_time(created, "created")
    expires = doc.get("expires")
    if expires is not None:
        parse_time(expires, "expires")
    key_id = doc.get("key_id")
    if not isinstance(key_id, str) or not KEY_ID_RE.match(key_id):
        raise _invalid("key_id: must be the key id in hex (up to 16 digits)")
    key_id = key_id.upper().zfill(16)
    raw_entries = doc.get("resources")
    if not isinstance(raw_entries, list) or len(raw_entries) > MAX_RESOURCES:
        raise _invalid(f"resources: must be a list of at most {MAX_RESOURCES}")
    entries = [_entry(raw, i) for i, raw in enumerate(raw_entries)]
    seen_ids: set[str] = set()
    seen_paths: set[str] = set()
    for e in entries:
        # FAT sticks fold case, so two paths differing only in case are one file there.
        folded = [unicodedata.normalize("NFC", p).casefold() for p in (e.path, *(s.path for s in e.subtitles))]
        if e.id in seen_ids or seen_paths.intersection(folded) or len(set(folded)) < len(folded):
            raise BundleError("E_DUPLICATE_ENTRY", f"manifest lists {e.id!r} / {e.path!r} twice",
                              zh="内容包清单里有重复的条目，未导入")
        seen_ids.add(e.id)
        seen_paths.update(folded)
    series = _series(doc, entries)
    withdraw = doc.get("withdraw") or []
    if not isinstance(withdraw, list) or len(withdraw) > MAX_RESOURCES:
        raise _invalid("withdraw: must be a list of resource ids")
    for w in withdraw:
        if not isinstance(w, str) or not ENTRY_ID_RE.match(w):
            raise _invalid("withdraw: must be a list of resource ids")
        if w in seen_ids:
            raise _invalid(f"withdraw: {w!r} is also published in this bundle")
    m = Manifest(version, channel, seq, created, expires, key_id, entries, list(dict.fromkeys(withdraw)), series)
    for rid in [e.id for e in entries] + [s["id"] for s in series]:
        try:
            validate_id(m.catalog_id(rid))
        except MetadataError as err:
            raise BundleError("E_METADATA", err.message, zh=err.zh) from None
    return m


def manifest_dict(channel: str, seq: int, key_id: str, entries: list[dict], *, withdraw=(), expires=None,
                  created: str | None = None, series=()) -> dict:
    """The JSON document of a manifest, in field order (used by build); ``series`` only when there are some,
    so a bundle without series is byte for byte what older nodes read."""
    doc = {
        "format": FORMAT_VERSION,
        "channel": channel,
        "seq": seq,
        "created": created or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": expires,
        "key_id": key_id,
        "resources": entries,
        "withdraw": list(withdraw),
    }
    if series:
        doc["series"] = list(series)
    return doc


# What operating systems leave on sticks; never read, never reported.
JUNK = {"system volume information", ".trashes", "thumbs.db", "$recycle.bin", ".spotlight-v100", ".fseventsd",
        "desktop.ini", ".ds_store", "lost+found", "recycler"}


def is_junk(name: str) -> bool:
    return name.lower() in JUNK or name.startswith(".")
