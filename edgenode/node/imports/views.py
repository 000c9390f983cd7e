"""The admin page for imports: live progress (polling the volatile jobs table) and history.

Every import (USB service, stick watcher, spool scan, sync pull, CLI) reports into
``jobs`` through the pipeline, so this page sees them all without knowing the source.
"""

from __future__ import annotations

import sqlite3
import time

from flask import Blueprint, jsonify, render_template

from edgenode.core import jobs
from edgenode.node.imports import history, trust
from edgenode.core.db import connect
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_imports", __name__, url_prefix="/admin/imports", template_folder="templates")
STALLED_SECONDS = 300  # a running job silent this long was killed (power cut, pulled stick + SIGKILL)


def _jobs(limit: int = 10) -> list[dict]:
    # Polled every second while an import runs: a plain read, no integrity check or migration.
    path = node().cfg.volatile_db_path
    if not path.exists():
        return []
    conn = connect(path, synchronous="NORMAL")
    try:
        rows = jobs.recent(conn, "import", limit)
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    now = time.time()
    out = []
    for j in rows:
        state = j["state"]
        if state == "running" and now - j["updated_at"] > STALLED_SECONDS:
            state = "stalled"
        out.append({
            "id": j["id"], "title": j["title"], "state": state, "message": j["message"],
            "bytes_done": j["bytes_done"], "bytes_total": j["bytes_total"],
            "files_done": j["files_done"], "files_total": j["files_total"],
            "percent": round(100 * j["bytes_done"] / j["bytes_total"]) if j["bytes_total"] else 0,
            "done_h": history.human_bytes(j["bytes_done"]), "total_h": history.human_bytes(j["bytes_total"]),
            "summary_zh": (j["result"] or {}).get("summary_zh") or j["message"],
            "started_at": j["started_at"],
        })
    return out


@bp.route("/")
@admin_required
def page():
    conn = get_db()
    rows = history.recent(conn, 50)
    return render_template("admin/imports.html", jobs=_jobs(), history=rows, keys=trust.list_keys(conn),
                           channels=trust.all_channel_states(conn),
                           latest=next((r for r in rows if r["result"] != "stale"), None))


@bp.route("/progress.json")
@admin_required
def progress():
    return jsonify({"jobs": _jobs(), "running": any(j["state"] == "running" for j in _jobs(5))})


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "内容导入", "admin_imports.page", order=30)
