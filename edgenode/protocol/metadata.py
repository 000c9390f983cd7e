"""What a resource is: its columns, kinds and the rules its metadata must meet.

Framework-free; used by the hand-add path, the bundle import and the portal.
"""

from __future__ import annotations

import re
import unicodedata

from edgenode.core.errors import EdgenodeError

# The Sharing Project's four columns (栏目): URL key → display name.
COLUMNS = {
    "sannong": "三农",
    "pushi": "普适性",
    "xinchengshi": "新城市人",
    "shequ": "社区服务",
}
COLUMN_BY_NAME = {v: k for k, v in COLUMNS.items()}

# File extension → kind: what a manifest entry's path may end with.
EXT_KIND = {
    **dict.fromkeys(("mp4", "m4v", "webm", "mkv", "mov", "avi", "wmv", "asf", "rmvb", "rm", "flv", "mpg", "mpeg",
                     "ts", "vob", "3gp"), "video"),
    **dict.fromkeys(("mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac", "wma", "amr"), "audio"),
    "pdf": "pdf",
    "epub": "epub",
    **dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp"), "image"),
}


KINDS = {
    "video": "视频",
    "audio": "音频",
    "pdf": "文档",
    "epub": "电子书",
    "image": "图片",
}

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 20
MAX_TAG = 30
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MetadataError(EdgenodeError):
    def __init__(self, message: str, zh: str):
        super().__init__("E_METADATA", message, zh=zh)


def column_key(value: str) -> str:
    """Accept a column's key (sannong) or its Chinese name (三农)."""
    v = (value or "").strip()
    if v in COLUMNS:
        return v
    if v in COLUMN_BY_NAME:
        return COLUMN_BY_NAME[v]
    raise MetadataError(f"unknown column {value!r}; use one of " + ", ".join(f"{k} ({n})" for k, n in COLUMNS.items()),
                        f"未知栏目“{value}”")


def clean_text(value, field: str, *, max_len: int, required: bool = False, multiline: bool = False) -> str:
    if value is None:
        value = ""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise MetadataError(f"{field}: not valid UTF-8 text", f"{field} 不是有效的 UTF-8 文本") from None
    if not isinstance(value, str):
        raise MetadataError(f"{field}: must be text", f"{field} 必须是文字")
    if "\ufffd" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise MetadataError(f"{field}: contains invalid characters (not UTF-8)", f"{field} 含有无效字符")
    value = unicodedata.normalize("NFC", value).strip()
    if not multiline and ("\n" in value or "\r" in value):
        raise MetadataError(f"{field}: must be a single line", f"{field} 不能换行")
    if _CONTROL.search(value):
        raise MetadataError(f"{field}: contains control characters", f"{field} 含有控制字符")
    if required and not value:
        raise MetadataError(f"{field}: must not be empty", f"{field} 不能为空")
    if len(value) > max_len:
        raise MetadataError(f"{field}: longer than {max_len} characters", f"{field} 超过 {max_len} 个字")
    return value


def validate_metadata(meta: dict) -> dict:
    """Return cleaned metadata (title, description, column, tags, language) or raise MetadataError."""
    out = {
        "title": clean_text(meta.get("title"), "title", max_len=MAX_TITLE, required=True),
        "description": clean_text(meta.get("description"), "description", max_len=MAX_DESCRIPTION, multiline=True),
        "column": column_key(meta.get("column") or ""),
        "language": clean_text(meta.get("language") or "zh", "language", max_len=16, required=True),
    }
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in re.split(r"[,，、\s]+", tags) if t]
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise MetadataError(f"tags: must be a list of at most {MAX_TAGS}", f"标签最多 {MAX_TAGS} 个")
    out["tags"] = sorted({clean_text(t, "tag", max_len=MAX_TAG, required=True) for t in tags})
    return out


def validate_id(resource_id: str) -> str:
    if not isinstance(resource_id, str) or not ID_RE.match(resource_id):
        raise MetadataError(f"resource id {resource_id!r}: use 1-128 letters, digits, '.', '_' or '-'",
                            "资源编号格式不正确")
    return resource_id


SERIES_FIELDS = {"id", "title", "description", "column", "tags"}
_SERIES_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_series(raw) -> dict:
    """A series (系列/专辑) of a manifest: id, title, description, column, tags; cleaned, or MetadataError."""
    if not isinstance(raw, dict):
        raise MetadataError("a series must be an object", "系列格式不正确")
    unknown = set(raw) - SERIES_FIELDS
    if unknown:
        raise MetadataError(f"unknown field(s) {', '.join(sorted(map(str, unknown)))[:80]}", "系列格式不正确")
    sid = raw.get("id")
    if not isinstance(sid, str) or not _SERIES_ID_RE.match(sid):
        raise MetadataError("id: use 1-96 letters, digits, '.', '_' or '-'", "系列编号格式不正确")
    for name in ("title", "description", "column"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise MetadataError(f"{name} must be text", f"{name} 必须是文字")
    tags = raw.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise MetadataError("tags must be a list of text", "标签格式不正确")
    meta = validate_metadata({k: raw.get(k) for k in ("title", "description", "column", "tags")})
    meta.pop("language")
    return {"id": sid, **meta}
