"""Subtitles: WebVTT or SRT from a signed bundle, sanitised into clean WebVTT, shown through <track> (issue 19)."""

from __future__ import annotations

import pytest

from edgenode.node.catalog import series_queries as sq
from edgenode.node.catalog.subtitles import SubtitleError, to_webvtt
from edgenode.node.imports.pipeline import import_bundle
from edgenode.protocol.bundle import MAX_SUBTITLE_BYTES
from tests.helpers_bundles import new_key, rewrite_manifest, snapshot, trust_key
from tests.helpers_series import SRT, VTT, series_bundle


def test_srt_becomes_clean_webvtt():
    out = to_webvtt(SRT).decode("utf-8")
    assert out.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:04.000\n你好，乡亲们\n")
    assert "<" not in out.replace("-->", "") and "alert(1)" in out  # the tags go, the harmless text stays


def test_gb18030_srt_is_read():
    assert "乡亲们" in to_webvtt(SRT.decode("utf-8").encode("gb18030")).decode("utf-8")


# Hostile subtitle files: refused with a stable code, or sanitised to cues that carry no markup.
HOSTILE = [
    ("huge", b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nx\n\n" * (MAX_SUBTITLE_BYTES // 30), "E_SUBTITLE_TOO_LARGE"),
    ("binary", bytes(range(256)) * 40, "E_SUBTITLE_INVALID"),
    ("utf16", VTT.decode("utf-8").encode("utf-16"), "E_SUBTITLE_INVALID"),
    ("no cues", b"WEBVTT\n\nNOTE nothing here\n", "E_SUBTITLE_INVALID"),
    ("html page", b"<html><body><script>alert(1)</script></body></html>", "E_SUBTITLE_INVALID"),
    ("impossible times", b"WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n\n00:99:00.000 --> 01:00:00.000\nx\n",
     "E_SUBTITLE_INVALID"),
    ("too many cues", b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nx\n\n" * 20_001, "E_SUBTITLE_INVALID"),
    ("script in cue", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script><img src=x onerror=y>hi\n",
     "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nalert(1)hi\n\n"),
    ("escaped tags", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n&lt;script&gt;x&lt;/script&gt; &amp; y\n",
     "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nx &amp; y\n\n"),
    ("style block", b"WEBVTT\n\nSTYLE\n::cue { background: url(http://evil/) }\n\n00:00:01.000 --> 00:00:02.000 "
                    b"position:10% line:0\n<c.red>ok</c>\n", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n"),
    ("controls", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na\x07b\x1bc\u202e\n".encode(), "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nabc\n\n"),
    ("unclosed tag", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<b onclick=x\n", "WEBVTT\n\n00:00:01.000 --> "
     "00:00:02.000\n&lt;b onclick=x\n\n"),
]


@pytest.mark.parametrize("name, data, expect", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_subtitles_are_refused_or_sanitised(name, data, expect):
    if expect.startswith("E_"):
        with pytest.raises(SubtitleError) as e:
            to_webvtt(data)
        assert e.value.code == expect
    else:
        assert to_webvtt(data).decode("utf-8") == expect


@pytest.fixture(scope="module")
def clip_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("subs")
    sk = new_key(tmp)
    return sk, series_bundle(tmp, sk, n=1, video_seconds=2, subtitles=SRT)


def test_a_bundle_subtitle_is_imported_as_webvtt_and_offered_as_a_track(cfg, conn, store, clip_bundle):
    sk, bundle = clip_bundle
    trust_key(conn, sk, "pushi")
    assert import_bundle(cfg, conn, store, bundle, source="t").result == "imported"
    num = conn.execute("SELECT num FROM resources WHERE id = 'pushi.opera-01'").fetchone()[0]
    [track] = sq.subtitles_of(conn, num)
    assert track["language"] == "zh" and track["label"] == "中文"
    assert store.path_for(track["sha256"]).read_bytes() == to_webvtt(SRT)
    from edgenode.node.app import create_app
    client = create_app(cfg).test_client()
    page = client.get("/r/pushi.opera-01").get_data(as_text=True)
    assert f'<track kind="subtitles" src="/media/{track["sha256"]}.vtt" srclang="zh" label="中文" default>' in page
    r = client.get(f"/media/{track['sha256']}.vtt")
    assert r.status_code == 200 and r.mimetype == "text/vtt" and r.data == to_webvtt(SRT)


@pytest.mark.parametrize("edit, code", [
    (lambda s: s.update(size=MAX_SUBTITLE_BYTES + 1), "E_SUBTITLE_TOO_LARGE"),
    (lambda s: s.update(path=s["path"][:-4] + ".ass"), "E_SUBTITLE_INVALID"),
    (lambda s: s.update(language="中文"), "E_MANIFEST_INVALID"),
    (lambda s: s.update(sha256="0" * 64), "E_HASH_MISMATCH"),
    (lambda s: s.update(size=s["size"] - 1), "E_SIZE_MISMATCH"),
    (lambda s: s.update(path="../../etc/passwd"), "E_BAD_PATH"),
    (lambda s: s.update(onload="x"), "E_MANIFEST_INVALID"),
])
def test_hostile_subtitle_entries_change_nothing(cfg, conn, store, tmp_path, clip_bundle, edit, code):
    import shutil
    sk, src = clip_bundle
    bundle = shutil.copytree(src, tmp_path / "b")
    trust_key(conn, sk, "pushi")
    rewrite_manifest(bundle, sk, lambda d: edit(d["resources"][0]["subtitles"][0]))
    before = snapshot(conn, store)
    r = import_bundle(cfg, conn, store, bundle, source="t")
    assert r.result == "failed" and r.error_code == code, (r.error_code, r.error)
    assert snapshot(conn, store)[:3] == before[:3]


def test_a_malformed_subtitle_file_refuses_the_bundle(cfg, conn, store, tmp_path, clip_bundle):
    import hashlib
    import shutil
    sk, src = clip_bundle
    bundle = shutil.copytree(src, tmp_path / "b")
    bad = b"<html><script>alert(1)</script></html>"
    sub = bundle / "files" / "ep01.zh.vtt"
    sub.unlink()
    sub.write_bytes(bad)
    trust_key(conn, sk, "pushi")
    rewrite_manifest(bundle, sk, lambda d: d["resources"][0]["subtitles"][0].update(
        size=len(bad), sha256=hashlib.sha256(bad).hexdigest()))
    before = snapshot(conn, store)
    r = import_bundle(cfg, conn, store, bundle, source="t")
    assert r.result == "failed" and r.error_code == "E_SUBTITLE_INVALID" and "ep01.zh.vtt" in r.error
    assert snapshot(conn, store)[:3] == before[:3]
