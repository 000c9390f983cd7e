import pytest

from edgenode.node.catalog import queries as q
from edgenode.node.imports.add import add_file
from edgenode.node.catalog.media import MediaError
from edgenode.protocol.metadata import MetadataError
from edgenode.core.errors import EdgenodeError

META = {"title": "测试视频", "column": "三农", "description": "说明", "tags": ["农技"]}


def snapshot(conn, store):
    rows = conn.execute("SELECT count(*) FROM resources").fetchone()[0]
    return rows, sorted(s for s, _ in store.iter_blobs())


def test_add_video_probes_and_makes_poster(conn, store, cfg, media_dir):
    res = add_file(conn, store, cfg, media_dir["mp4"], META)
    assert res["kind"] == "video" and res["playable"] == 1 and res["visible"] == 1
    assert 3.5 < res["duration"] < 4.5
    assert res["codecs"] == "h264,aac"
    assert res["poster_sha256"] and store.has(res["poster_sha256"])
    assert res["column_key"] == "sannong" and res["tags"] == ["农技"]


def test_add_audio_and_pdf(conn, store, cfg, media_dir):
    a = add_file(conn, store, cfg, media_dir["mp3"], {**META, "title": "音频"})
    p = add_file(conn, store, cfg, media_dir["pdf"], {**META, "title": "文档"})
    assert (a["kind"], p["kind"]) == ("audio", "pdf")
    assert a["playable"] == 1 and p["poster_sha256"] is None


def test_legacy_format_is_flagged_not_refused(conn, store, cfg, media_dir):
    res = add_file(conn, store, cfg, media_dir["wmv"], {**META, "title": "老视频"})
    assert res["kind"] == "video" and res["playable"] == 0
    assert "wmv2" in res["codecs"]


@pytest.mark.parametrize("key, code", [
    ("noise", "E_MEDIA_CORRUPT"),
    ("truncated", "E_MEDIA_CORRUPT"),
    ("truncated_fast", "E_MEDIA_CORRUPT"),
    ("docx", "E_UNSUPPORTED_TYPE"),
    ("broken_pdf", "E_MEDIA_CORRUPT"),
])
def test_bad_media_changes_nothing(conn, store, cfg, media_dir, key, code):
    before = snapshot(conn, store)
    with pytest.raises(MediaError) as e:
        add_file(conn, store, cfg, media_dir[key], META)
    assert e.value.code == code
    assert e.value.zh and e.value.message
    assert snapshot(conn, store) == before


@pytest.mark.parametrize("meta, fragment", [
    ({**META, "title": ""}, "title: must not be empty"),
    ({**META, "title": "   "}, "title: must not be empty"),
    ({**META, "column": "娱乐"}, "unknown column"),
    ({**META, "title": "a\x00b"}, "control characters"),
    ({**META, "title": "两行\n标题"}, "single line"),
    ({**META, "title": "x" * 201}, "longer than 200"),
    ({**META, "title": "bad\udcff"}, "invalid characters"),
    ({**META, "title": b"\xff\xfe"}, "not valid UTF-8"),
    ({**META, "tags": ["t"] * 21}, "at most 20"),
])
def test_bad_metadata_changes_nothing(conn, store, cfg, media_dir, meta, fragment):
    before = snapshot(conn, store)
    with pytest.raises(MetadataError) as e:
        add_file(conn, store, cfg, media_dir["mp4"], meta)
    assert fragment in e.value.message
    assert snapshot(conn, store) == before


def test_cli_add_reports_clear_errors(runner, media_dir, cfg):
    r = runner("add", str(media_dir["noise"]), "--title", "坏文件", "--column", "sannong")
    assert r.exit_code == 1 and "E_MEDIA_CORRUPT" in r.output
    r = runner("add", str(media_dir["mp4"]), "--title", "好文件", "--column", "nope")
    assert r.exit_code == 1 and "E_METADATA" in r.output and "unknown column" in r.output
    r = runner("add", str(media_dir["mp4"]), "--title", "好文件", "--column", "shequ", "--tag", "安全")
    assert r.exit_code == 0 and "added local-clip-" in r.output
    r = runner("list", "--json")
    assert "好文件" in r.output and "坏文件" not in r.output


def test_resource_hidden_until_blobs_verified(conn, store, cfg, media_dir):
    res = add_file(conn, store, cfg, media_dir["mp3"], META)
    conn.execute("UPDATE blobs SET state = 'missing' WHERE sha256 = ?", (res["sha256"],))
    q.refresh_visibility(conn)
    with pytest.raises(EdgenodeError):
        q.get(conn, res["id"])
    assert q.browse(conn).total == 0


def test_withdraw_hides_and_releases_blobs(conn, store, cfg, media_dir):
    res = add_file(conn, store, cfg, media_dir["mp3"], META)
    assert res["sha256"] in q.referenced_hashes(conn)
    assert q.withdraw(conn, res["id"])
    assert res["sha256"] not in q.referenced_hashes(conn)
    assert q.browse(conn).total == 0
