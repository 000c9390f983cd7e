"""Real media through the pipeline: facts and poster come from the staged, verified bytes."""

from __future__ import annotations

import shutil

from edgenode.protocol.build import build_bundle
from edgenode.node.imports.pipeline import import_bundle
from tests.helpers_bundles import check_consistent, new_key, trust_key


def test_video_and_audio_bundle(cfg, conn, store, tmp_path, media_dir):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(media_dir["mp4"], src / "rice.mp4")
    shutil.copy(media_dir["mp3"], src / "song.mp3")
    shutil.copy(media_dir["wmv"], src / "old.wmv")
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = build_bundle(src, "sannong", 1, tmp_path / "out", secret_key=sk, default_column="sannong", resources=[
        {"path": "rice.mp4", "id": "rice", "title": "水稻插秧", "tags": ["水稻"]},
        {"path": "song.mp3", "id": "song", "title": "山歌"},
        {"path": "old.wmv", "id": "old", "title": "老片子"},
    ])
    r = import_bundle(cfg, conn, store, bundle, source="test")
    assert r.result == "imported", r.error
    rows = {row["id"]: dict(row) for row in conn.execute("SELECT * FROM resources")}
    rice = rows["sannong.rice"]
    assert rice["kind"] == "video" and rice["duration"] > 3 and rice["playable"] == 1 and "h264" in rice["codecs"]
    assert rice["poster_sha256"] and store.has(rice["poster_sha256"])
    assert rows["sannong.song"]["kind"] == "audio" and rows["sannong.song"]["poster_sha256"] is None
    assert rows["sannong.old"]["playable"] == 0  # imported, flagged for transcoding
    assert all(r["visible"] for r in rows.values())
    check_consistent(conn, store)
    assert not [p for p in store.staging.rglob("*") if not p.is_dir()]  # probe links cleaned up


def test_corrupt_video_is_refused_before_anything_is_stored(cfg, conn, store, tmp_path, media_dir):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(media_dir["truncated"], src / "broken.mp4")
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = build_bundle(src, "sannong", 1, tmp_path / "out", secret_key=sk)
    r = import_bundle(cfg, conn, store, bundle, source="test")
    assert r.result == "failed" and r.error_code.startswith("E_MEDIA"), (r.error_code, r.error)
    assert not list(store.iter_blobs())
    assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
