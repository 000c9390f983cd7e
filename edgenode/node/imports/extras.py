"""What a bundle carries beside its resources' files: series and subtitles (docs/bundle-format.md).

Called by the pipeline: subtitles after the payload is staged (each file read,
checked against its signed size and hash, and rebuilt as clean WebVTT into the
staging store, so a hostile file refuses the whole bundle before anything is
moved), series inside the import's one transaction.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3

from edgenode.core.store import HashMismatch, Store
from edgenode.node.catalog import series_queries as sq
from edgenode.node.catalog.subtitles import SubtitleError, to_webvtt
from edgenode.protocol.bundle import MAX_SUBTITLE_BYTES, BundleError, Manifest


def _read_subtitle(bundle_dir, sub, open_payload) -> bytes:
    fd = open_payload(bundle_dir, sub.path)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_SUBTITLE_BYTES + 1)
    if len(data) != sub.size:
        raise BundleError("E_SIZE_MISMATCH", f"{sub.path}: {len(data)} bytes, the manifest says {sub.size}",
                          zh="文件大小与清单不符（文件可能不完整），未导入")
    if hashlib.sha256(data).hexdigest() != sub.sha256:
        raise HashMismatch(sub.sha256, hashlib.sha256(data).hexdigest(), sub.path)
    return data


def stage_subtitles(staging: Store, bundle_dir, manifest: Manifest, open_payload) -> dict[str, list[tuple]]:
    """{entry id: [(language, label, sha256 of the clean WebVTT, default)]}, the WebVTT staged."""
    out: dict[str, list[tuple]] = {}
    for e in manifest.entries:
        for sub in e.subtitles:
            data = _read_subtitle(bundle_dir, sub, open_payload)
            try:
                vtt = to_webvtt(data)
            except SubtitleError as err:
                raise BundleError(err.code, f"{sub.path}: {err.message}", zh=err.zh) from None
            staging.init()
            out.setdefault(e.id, []).append((sub.language, sub.label, staging.put_bytes(vtt).sha256, sub.default))
    return out


def commit_series(conn: sqlite3.Connection, manifest: Manifest, source: str) -> dict[str, int]:
    """Insert or update the manifest's series (inside the import's transaction); {series id: num}."""
    nums = {}
    for meta in manifest.series:
        sid = manifest.catalog_id(meta["id"])
        owner = sq.series_channel(conn, sid)
        if owner is not False and owner != manifest.channel:
            raise BundleError("E_ID_CLASH", f"series {sid}: already exists and does not belong to channel "
                              f"{manifest.channel!r}", zh="系列编号与本机已有系列冲突，未导入")
        nums[meta["id"]] = sq.upsert_series(conn, {**meta, "id": sid}, channel=manifest.channel, source=source)
        sq.reindex_episodes(conn, nums[meta["id"]])
    return nums
