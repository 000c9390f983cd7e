"""Helpers for the activities, campaigns, feedback and privacy tests (issue 10)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tests.helpers_sync import ROOT, free_port, wait_port

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ERROR_RE = re.compile(r'id="error"[^>]*>([^<]+)<')
CODE_RE = re.compile(r'id="code">(\d{8})<')
ORDER_RE = re.compile(r'id="order-id">(\d{20})<')

# Phone numbers used by the tests: easy to grep for in file bytes and batches.
PHONES = [f"1390000{n:04d}" for n in range(100)]


def csrf(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token in page"
    return m.group(1)


def activity(conn, *, capacity: int = 20, audit: bool = False, start: float | None = None,
             end: float | None = None, **extra) -> dict:
    from edgenode.node.activities.queries import create_activity
    start = time.time() + 86400 if start is None else start
    end = start + 7200 if end is None else end
    return create_activity(conn, {"title": extra.pop("title", "农技讲座：水稻病虫害防治"), "place": "村文化室",
                                  "start": start, "end": end, "capacity": capacity, "audit": audit, **extra})


def campaign(conn, cfg, *, cid: str = "qunwen-2026", start: float | None = None, end: float | None = None,
             daily_limit: int | None = None, items=("12", "31", "26")) -> dict:
    from edgenode.node.campaigns.queries import create_campaign
    doc = {"id": cid, "title": "2026 群文杯 原创歌曲大赛", "rules": "每人每天限投两票。",
           "start": time.time() - 3600 if start is None else start,
           "end": time.time() + 86400 if end is None else end,
           "items": [{"id": i, "title": f"作品{i}"} for i in items]}
    if daily_limit is not None:
        doc["daily_limit"] = daily_limit
    return create_campaign(conn, cfg, doc)


@contextmanager
def live_app(cfg):
    """The node app under werkzeug's threaded server in this process, on a free port."""
    from werkzeug.serving import make_server

    from edgenode.node.app import create_app
    app = create_app(cfg)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", app
    finally:
        srv.shutdown()
        t.join(5)


@contextmanager
def gunicorn_app(cfg, *, workers: int = 3, threads: int = 4):
    """The node app under real gunicorn: several worker processes writing one database."""
    from edgenode.node.app import create_app
    create_app(cfg)  # migrations, secret key and pickup-code key made once, before workers race
    from edgenode.node.activities.codes import load_key
    load_key(cfg)
    port = free_port()
    env = {**os.environ, "EDGENODE_DATA_DIR": str(cfg.data_path), "EDGENODE_CONFIG": "",
           "PYTHONPATH": str(ROOT)}
    log = Path(cfg.data_path) / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
                                 "-b", f"127.0.0.1:{port}", "edgenode.node.app:create_app()"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
