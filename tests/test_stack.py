"""`edgenode stack` (what `make run` starts) is the production stack: nginx sends the media bytes,
gunicorn renders the pages, the scheduler carries page views to the county hub, and one Ctrl-C
stops every process."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.helpers_portal import wait_http
from tests.helpers_sync import Hub, free_port

REPO = Path(__file__).resolve().parent.parent
EDGENODE = Path(sys.executable).parent / "edgenode"


def _stack_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            env = p.info["environ"] or {}
            if env.get("EDGENODE_DATA_DIR") == str(data_dir) or str(data_dir / "stack") in " ".join(
                    p.info["cmdline"] or []):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


def test_make_runs_stack_serves_media_from_nginx_and_page_views_reach_the_hub(demo_cfg, hub, tmp_path):
    from edgenode.core.db import open_main
    from edgenode.node.sync.enroll import enroll
    from edgenode.node.web import accounts

    data = Path(demo_cfg.data_dir).resolve()
    conn = open_main(demo_cfg)
    enroll(demo_cfg, conn, hub.url, hub.new_code())
    conn.close()

    port = free_port()
    env = {**os.environ, "EDGENODE_DATA_DIR": str(data), "EDGENODE_CONFIG": "",
           "EDGENODE_SYNC_UPLINK_MINUTES": "1"}
    out = open(tmp_path / "stack.out", "w+")
    proc = subprocess.Popen([str(EDGENODE), "stack", "--host", "127.0.0.1", "--port", str(port), "--no-advertise"],
                            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/static/portal.css", timeout=60, proc=proc)
        deadline = time.monotonic() + 60
        while (home := requests.get(url + "/", timeout=10)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # nginx is up before gunicorn's socket: its 请稍候 page (503) meanwhile
        assert home.status_code == 200 and "最新上架" in home.text

        # nginx, not Python, sent the bytes: its ETag is "<mtime hex>-<size hex>" of the store's own file.
        media = re.search(r"/media/([0-9a-f]{64})\.([a-z0-9]+)", home.text)
        r = requests.get(url + media.group(0), headers={"Range": "bytes=0-99"}, timeout=10)
        assert r.status_code == 206 and r.headers["Server"] == "nginx" and len(r.content) == 100
        sha = media.group(1)
        st = (data / "store" / sha[:2] / sha[2:4] / sha).stat()
        assert r.headers["ETag"] == f'"{int(st.st_mtime):x}-{st.st_size:x}"'

        # The printed admin password is real, and the password file is private.
        text = Path(out.name).read_text()
        password = re.search(r"password (demo-\S+)", text).group(1)
        pw_file = data / "demo-admin-password"
        assert pw_file.stat().st_mode & 0o777 == 0o600
        conn = open_main(demo_cfg)
        assert accounts.verify_password(password, accounts.get_account(conn)["password_hash"])
        conn.close()

        # Page views through nginx reach the hub by the scheduler's uplink alone.
        for path in ("/", "/column/sannong", "/search?q=水稻"):
            requests.get(url + path, timeout=10, headers={"Cookie": "tid=stacktest0001"})
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not _hub_events(hub):
            assert proc.poll() is None, Path(out.name).read_text()[-3000:]
            time.sleep(2)
        assert _hub_events(hub) > 0, Path(out.name).read_text()[-3000:]
        assert {"web", "nginx", "scheduler"} <= {m for m in re.findall(r"(\w+)\.1 started", text)}
    finally:
        # Ctrl-C: the terminal signals the whole foreground group.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            leftovers = _stack_processes(data)
            for p in leftovers:
                p.kill()
            out.close()
    assert leftovers == []


def _hub_events(hub) -> int:
    conn = hub.db()
    try:
        return conn.execute("SELECT coalesce(sum(events), 0) FROM hub_nodes").fetchone()[0]
    finally:
        conn.close()


def test_the_development_server_needs_dev(tmp_path):
    r = subprocess.run([str(EDGENODE), "--data-dir", str(tmp_path / "d"), "serve", "--port", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "E_USAGE" in r.stderr and "edgenode stack" in r.stderr
