"""What the long-running processes load at start, which is most of their idle memory (issue 3's ≤100 MB).

Heavy libraries are imported where they are used: pypinyin when indexing, cryptography when
verifying a bundle or signing a request, requests when calling the hub.  The web workers and the
scheduler never do those things themselves (the scheduler's jobs run in child processes), so none
of these may be loaded by merely starting them.  Each is 5-55 MB per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers_sync import ROOT

HEAVY = ["pypinyin", "cryptography", "sqlite_utils", "requests", "urllib3", "PIL", "zeroconf", "sh"]


def _loaded(code: str, data_dir, extra=()) -> list[str]:
    env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_DATA_DIR": str(data_dir)}
    watch = HEAVY + list(extra)
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {watch!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_web_worker_loads_no_heavy_library(demo_cfg):
    # What the gunicorn worker loads (systemd/gunicorn.conf.py), after the villagers' pages and the
    # administrator's (signed in): none of them may leave APScheduler or a heavy library behind.
    from edgenode.node.web import accounts
    from edgenode.core.db import open_main
    from edgenode.core.identity import load_or_create
    conn = open_main(demo_cfg)
    accounts.set_password(conn, "a long enough password 1")
    conn.close()
    load_or_create(demo_cfg)  # a provisioned node has its identity (provisioning/install.sh makes it)
    code = ("from edgenode.node.wsgi import app\n"
            "c = app.test_client()\n"
            "for p in ('/', '/search?q=%E6%B0%B4%E7%A8%BB', '/r/demo-01', '/admin/login', '/api/health'):\n"
            "    assert c.get(p).status_code < 500, p\n"
            "app.config['WTF_CSRF_ENABLED'] = False\n"
            "r = c.post('/admin/login', data={'username': 'admin', 'password': 'a long enough password 1'})\n"
            "assert r.status_code == 302, r.status_code\n"
            "pages = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith('/admin/')\n"
            "         and 'GET' in r.methods and '<' not in r.rule]\n"
            "assert len(pages) >= 8, pages\n"
            "for p in pages:\n"
            "    assert c.get(p).status_code == 200, p\n")
    assert _loaded(code, demo_cfg.data_path, extra=["apscheduler"]) == []


@pytest.mark.parametrize("what", ["import edgenode.cli, edgenode.core.scheduler",
                                  "from edgenode.core.scheduler import build\n"
                                  "from edgenode.core.config import load_config\n"
                                  "build(load_config(), blocking=False)"])
def test_the_scheduler_loads_no_heavy_library(cfg, what):
    assert _loaded(what, cfg.data_path) == []
