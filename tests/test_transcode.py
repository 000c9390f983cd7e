"""Idle-time transcoding with the real ffmpeg: WMV and MPEG-2 in, H.264/AAC MP4 out, played by chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from edgenode.node.catalog import media
from edgenode.node.imports.add import add_file
from edgenode.core.db import open_main
from edgenode.node.storage import eviction, transcode
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.fixtures import ffmpeg

NIGHT = datetime(2026, 11, 25, 23, 0)
NOON = datetime(2026, 11, 25, 12, 0)


def legacy(root: Path, kind: str, seconds: int = 4, size: str = "320x240") -> Path:
    """A real legacy file: WMV (wmv2 + wmav2) or MPEG-2 program stream (mpeg2video + mp2)."""
    root.mkdir(parents=True, exist_ok=True)
    src = ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate=25",
           "-f", "lavfi", "-i", f"sine=frequency=500:duration={seconds}", "-shortest"]
    if kind == "wmv":
        out = root / f"old-{seconds}.wmv"
        ffmpeg(*src, "-c:v", "wmv2", "-c:a", "wmav2", str(out))
    else:
        out = root / f"old-{seconds}.mpg"
        ffmpeg(*src, "-c:v", "mpeg2video", "-q:v", "3", "-c:a", "mp2", str(out))
    return out


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("legacy")
    return {"wmv": legacy(root, "wmv"), "mpg": legacy(root, "mpg")}


@pytest.fixture
def node(tmp_path):
    cfg = make_config(tmp_path / "data", transcode__idle_hours=["22:00-07:00"])
    conn = open_main(cfg, check=True)
    yield cfg, conn, open_store(cfg)
    conn.close()


def _add(cfg, conn, store, path: Path, title: str) -> dict:
    res = add_file(conn, store, cfg, path, {"title": title, "column": "sannong"})
    assert res["playable"] == 0
    return res


def _row(conn, rid: str) -> dict:
    return dict(conn.execute("SELECT * FROM resources WHERE id = ?", (rid,)).fetchone())


def test_outside_the_idle_window_nothing_is_transcoded(node, legacy_files):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["wmv"], "老电影")
    out = transcode.run(conn, store, cfg, now=lambda: NOON)
    assert out["ran"] == 0 and "outside the idle hours" in out["reason"]
    assert _row(conn, res["id"])["sha256"] == res["sha256"]
    assert conn.execute("SELECT count(*) FROM transcode_jobs").fetchone()[0] == 0
    assert not any(store.staging.iterdir())
    assert [i["id"] for i in transcode.queue(conn, cfg)] == [res["id"]]


def test_a_run_stops_when_the_window_closes(node, legacy_files):
    cfg, conn, store = node
    a = _add(cfg, conn, store, legacy_files["wmv"], "一")
    b = _add(cfg, conn, store, legacy_files["mpg"], "二")
    times = iter([NIGHT, datetime(2026, 11, 26, 7, 0)])  # the second check is at 07:00: closed
    out = transcode.run(conn, store, cfg, now=lambda: next(times))
    assert out["done"] == [a["id"]] and "outside" in out["reason"]
    assert _row(conn, b["id"])["playable"] == 0


def _serve(app):
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _plays_in_chromium(url: str) -> dict:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.goto(url)
            return page.evaluate("""async () => {
                const v = document.querySelector('video');
                v.muted = true;
                await v.play();
                await new Promise(r => setTimeout(r, 2500));
                return {t: v.currentTime, src: v.currentSrc, err: v.error && v.error.code,
                        can: v.canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"')};
            }""")
        finally:
            browser.close()


@pytest.mark.parametrize("kind", ["wmv", "mpg"])
def test_legacy_file_is_transcoded_in_the_window_and_plays_in_chromium(node, legacy_files, kind):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files[kind], "老节目")
    out = transcode.run(conn, store, cfg, now=lambda: NIGHT)
    assert out["done"] == [res["id"]], out
    row = _row(conn, res["id"])
    assert row["playable"] == 1 and row["ext"] == "mp4" and row["mime"] == "video/mp4"
    assert row["codecs"] == "h264,aac" and row["visible"] == 1
    assert row["sha256"] != res["sha256"] and store.has(row["sha256"])
    assert conn.execute("SELECT sha256 FROM resource_blobs WHERE resource_num = ? AND role = 'main'",
                        (row["num"],)).fetchone()[0] == row["sha256"]
    # The stored blob really is H.264/AAC MP4 (ffprobe through a name with the extension).
    link = store.staging / "check.mp4"
    link.symlink_to(store.path_for(row["sha256"]))
    facts = media.probe(link)
    link.unlink()
    assert facts.codecs == "h264,aac" and abs(facts.duration - res["duration"]) < 1
    # Original dropped (transcode.keep_original = false), nothing left in staging.
    assert not store.has(res["sha256"])
    assert not conn.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (res["sha256"],)).fetchone()
    assert not any(store.staging.iterdir())

    from edgenode.node.app import create_app
    server = _serve(create_app(cfg))
    try:
        got = _plays_in_chromium(f"http://127.0.0.1:{server.server_port}/r/{res['id']}")
    finally:
        server.shutdown()
    assert got["err"] is None and got["can"] == "probably"
    assert row["sha256"] in got["src"]          # the page plays the new blob
    assert got["t"] > 1.0, got                  # and playback really advanced


def test_keep_original_keeps_it_and_eviction_takes_it_first(tmp_path, legacy_files):
    cfg = make_config(tmp_path / "data", transcode__keep_original=True)
    conn = open_main(cfg, check=True)
    store = open_store(cfg)
    res = _add(cfg, conn, store, legacy_files["wmv"], "保留原件")
    out = transcode.run(conn, store, cfg, force_window=True)
    assert out["done"] == [res["id"]]
    assert store.has(res["sha256"])
    roles = dict(conn.execute("SELECT role, sha256 FROM resource_blobs WHERE resource_num = ?", (res["num"],)))
    assert roles["original"] == res["sha256"] and roles["main"] != res["sha256"]
    first = eviction.candidates(conn, cfg)[0]
    assert (first.reason, first.sha256) == ("original", res["sha256"])
    conn.close()


def test_failure_leaves_the_original_with_the_error_shown(node, legacy_files):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["wmv"], "坏文件")
    # The disk damaged the stored file after it was added: ffmpeg cannot produce the whole programme.
    path = store.path_for(res["sha256"])
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 4])
    out = transcode.run(conn, store, cfg, now=lambda: NIGHT)
    assert out["done"] == [] and out["failed"][0]["id"] == res["id"]
    row = _row(conn, res["id"])
    assert row["sha256"] == res["sha256"] and row["playable"] == 0 and row["visible"] == 1
    job = transcode.status(conn, cfg, now=NIGHT)["failed"][0]
    assert job["resource_id"] == res["id"] and job["error"] and job["attempts"] == 1
    assert not any(store.staging.iterdir())
    # The error is shown where the administrator looks: the admin page and `transcode status`.
    from edgenode.node.app import create_app
    from tests.helpers_portal import login, set_admin
    app = create_app(cfg)
    app.config["TESTING"] = True
    client = app.test_client()
    set_admin(conn)
    login(client)
    html = client.get("/admin/storage/").get_data(as_text=True)
    assert "转换失败（原文件保持不变）" in html and f'data-resource="{res["id"]}"' in html
    assert job["error"][:40].replace("'", "&#39;").replace('"', "&#34;") in html
    # Retried on later runs until transcode.max_attempts, then left alone.
    for _ in range(5):
        transcode.run(conn, store, cfg, now=lambda: NIGHT)
    assert conn.execute("SELECT attempts FROM transcode_jobs").fetchone()[0] == cfg["transcode.max_attempts"]
    assert transcode.queue(conn, cfg) == []


def _ffmpeg_writing(path: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(path).encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_killed_job_restarts_with_no_half_file_visible(node, tmp_path):
    cfg, conn, store = node
    src = legacy(tmp_path / "long", "mpg", seconds=16, size="640x480")
    res = _add(cfg, conn, store, src, "长节目")
    blobs_before = {sha for sha, _ in store.iter_blobs()}
    env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_TRANSCODE_IDLE_HOURS": '["22:00-07:00"]'}
    worker = subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path),
                               "transcode", "run", "--force-window"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = transcode.staging_path(store, res["num"], "video")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (partial.exists() and partial.stat().st_size > 0):
        time.sleep(0.01)
    assert partial.exists(), "the worker never started writing"
    # ffmpeg runs at the lowest CPU and I/O priority.
    pids = _ffmpeg_writing(partial)
    assert pids, "no ffmpeg process writes the staging file"
    assert int(Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 19  # nice
    assert "idle" in subprocess.run(["ionice", "-p", str(pids[0])], capture_output=True, text=True).stdout
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    # ffmpeg died with its worker; the half file exists only in staging, never in the store or catalogue.
    deadline = time.monotonic() + 5
    while _ffmpeg_writing(partial) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ffmpeg_writing(partial) == []
    assert {sha for sha, _ in store.iter_blobs()} == blobs_before
    row = _row(conn, res["id"])
    assert (row["sha256"], row["playable"]) == (res["sha256"], 0)
    assert conn.execute("SELECT state FROM transcode_jobs").fetchone()[0] == "running"

    out = transcode.run(conn, store, cfg, force_window=True)
    assert out["done"] == [res["id"]]
    row = _row(conn, res["id"])
    assert row["playable"] == 1 and row["codecs"] == "h264,aac"
    assert not partial.exists() and not any(store.staging.iterdir())
    assert store.verify()["bad"] == []
    job = dict(conn.execute("SELECT * FROM transcode_jobs").fetchone())
    assert job["state"] == "done" and job["attempts"] == 2


def test_cli_shows_a_failure(node, legacy_files, runner):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["wmv"], "坏")
    store.path_for(res["sha256"]).write_bytes(b"\0" * 100)  # the stored file was destroyed
    r = runner("transcode", "run", "--force-window")
    assert r.exit_code == 0 and f"failed {res['id']}: E_TRANSCODE" in r.output
    r = runner("transcode", "status")
    assert f"failed (1x): {res['id']}: ffmpeg failed" in r.output


def test_cli_status_and_run(node, legacy_files, runner):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["mpg"], "命令行")
    r = runner("transcode", "status")
    assert r.exit_code == 0 and res["id"] in r.output and "queued: 1" in r.output
    r = runner("transcode", "run", "--force-window")
    assert r.exit_code == 0 and f"transcoded {res['id']}" in r.output
    r = runner("transcode", "status", "--json")
    assert '"queue": []' in r.output


def test_audio_in_a_legacy_format_becomes_aac(node, tmp_path):
    cfg, conn, store = node
    wma = tmp_path / "song.wma"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=3", "-c:a", "wmav2", str(wma))
    res = _add(cfg, conn, store, wma, "老歌")
    assert res["kind"] == "audio"
    assert transcode.run(conn, store, cfg, now=lambda: NIGHT)["done"] == [res["id"]]
    row = _row(conn, res["id"])
    assert (row["ext"], row["mime"], row["codecs"], row["playable"]) == ("m4a", "audio/mp4", "aac", 1)


def test_one_job_at_a_time(node, legacy_files):
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["wmv"], "排队")
    with transcode._lock(cfg) as mine:  # as if another worker were transcoding
        assert mine
        out = transcode.run(conn, store, cfg, force_window=True)
    assert out["ran"] == 0 and out["reason"] == "another transcode is running"
    assert _row(conn, res["id"])["playable"] == 0


def test_the_scheduler_runs_transcoding_in_its_own_thread(cfg):
    from edgenode.core.scheduler import build
    sched = build(cfg, blocking=False)
    job = sched.get_job("edgenode-transcode")
    assert job is not None and job.executor == "storage"
    off = build(cfg.replace(transcode__enabled=False), blocking=False)
    assert off.get_job("edgenode-transcode") is None


def test_scheduler_tick_reconciles_folds_plays_and_respects_the_window(node, legacy_files):
    cfg, conn, store = node
    from edgenode.node.storage.jobs import transcode_tick
    from edgenode.node.usage.events import record
    res = _add(cfg, conn, store, legacy_files["wmv"], "定时")
    record(conn, [{"kind": "play_start", "terminal": "t", "resource_id": res["id"]}])
    out = transcode_tick(cfg.replace(transcode__idle_hours=[]))  # no idle hours configured: never
    assert out["ran"] == 0 and "outside" in out["reason"]
    assert conn.execute("SELECT count(*) FROM storage_last_played").fetchone()[0] == 1
    assert transcode_tick(cfg.replace(transcode__idle_hours=["00:00-24:00"]))["done"] == [res["id"]]


def test_crash_between_store_and_switch_changes_nothing_visible(node, legacy_files, monkeypatch):
    """The result is in the store but the worker dies before the catalogue transaction."""
    cfg, conn, store = node
    res = _add(cfg, conn, store, legacy_files["wmv"], "断电")
    monkeypatch.setattr(transcode, "_switch", lambda *a, **kw: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        transcode.run(conn, store, cfg, force_window=True)
    monkeypatch.undo()
    row = _row(conn, res["id"])
    assert (row["sha256"], row["playable"]) == (res["sha256"], 0)  # the catalogue never saw the new file
    orphan = {sha for sha, _ in store.iter_blobs()} - {res["sha256"], res["poster_sha256"]}
    assert len(orphan) == 1  # the verified MP4, referenced by nothing: gc material
    from edgenode.node.catalog import queries as q
    assert not orphan & q.referenced_hashes(conn)
    out = transcode.run(conn, store, cfg, force_window=True)
    assert out["done"] == [res["id"]]
    row = _row(conn, res["id"])
    assert row["playable"] == 1 and store.has(row["sha256"])
    from edgenode.node.catalog import queries as q2
    store.gc(q2.referenced_hashes(conn))  # whatever the crash left is collectable; nothing needed goes
    assert store.has(row["sha256"]) and store.verify()["bad"] == []
