"""The admin page for imports: live progress (polling the volatile jobs table) and history.

Every import (USB service, stick watcher, spool scan, sync pull, CLI) reports into
``jobs`` through the pipeline, so this page sees them all without knowing the source.
"""

from __future__ import annotations

import sqlite3
import time

from flask import Blueprint, jsonify, render_template, session

from edgenode.core import jobs
from edgenode.node.imports import history, trust
from edgenode.core.db import connect
from edgenode.node.web.auth import admin_nav, admin_required
from edgenode.node.web.context import get_db, node

bp = Blueprint("admin_imports", __name__, url_prefix="/admin/imports", template_folder="templates")
STALLED_SECONDS = 300  # a running job silent this long was killed (power cut, pulled stick + SIGKILL)
# The pipeline's phases as a volunteer reads them: checking, copying, saving.
PHASES_ZH = {"verify": "校验", "plan": "校验", "copy": "复制", "staged": "复制", "probe": "入库",
             "move": "入库", "commit": "入库", "committed": "入库", "done": "完成"}
RECENT_SECONDS = 24 * 3600  # finished and failed imports stay on top this long, then only in the record


def _eta_zh(j: dict, now: float) -> str:
    """Time left, from the copy rate so far; empty until there is a rate to go by."""
    elapsed, done, total = now - j["started_at"], j["bytes_done"], j["bytes_total"]
    if not total or done <= 0 or elapsed < 2:
        return ""
    left = (total - done) * elapsed / done
    if left < 60:
        return "不到 1 分钟"
    return f"约 {round(left / 60)} 分钟"


def _jobs(limit: int = 10, main=None) -> list[dict]:
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
        state, summary = j["state"], (j["result"] or {}).get("summary_zh") or j["message"]
        recorded = history.outcome_of_job(main, j["title"], j["started_at"]) if main and state == "running" else None
        if recorded:  # the outcome is on record; only the job row's last update was lost (a full disk)
            state = "done" if recorded["result"] in ("imported", "unchanged") else "failed"
            summary = recorded["summary_zh"]
        elif state == "running" and now - j["updated_at"] > STALLED_SECONDS:
            state = "stalled"
        phase = (j["message"] or "").split(" ", 1)[0]
        out.append({
            "id": j["id"], "title": j["title"], "state": state, "message": j["message"],
            "phase": phase, "phase_zh": PHASES_ZH.get(phase, "准备"),
            "eta_zh": _eta_zh(j, now) if state == "running" and phase in ("copy", "staged") else "",
            "bytes_done": j["bytes_done"], "bytes_total": j["bytes_total"],
            "files_done": j["files_done"], "files_total": j["files_total"],
            "percent": round(100 * j["bytes_done"] / j["bytes_total"]) if j["bytes_total"] else 0,
            "done_h": history.human_bytes(j["bytes_done"]), "total_h": history.human_bytes(j["bytes_total"]),
            "summary_zh": summary,
            "started_at": j["started_at"],
        })
    return out


def _page_state(conn) -> dict:
    jobs_now = _jobs(main=conn)
    running = [j for j in jobs_now if j["state"] == "running"]
    stalled = [j for j in jobs_now if j["state"] == "stalled"]
    rows = history.recent(conn, 50)
    since = time.time() - RECENT_SECONDS
    fresh = [r for r in rows if r["finished_at"] >= since and r["result"] != "stale"]
    return {"running": running, "stalled": stalled, "history": rows,
            "finished": [r for r in fresh if r["result"] in ("imported", "unchanged")],
            "failed": [r for r in fresh if r["result"] == "failed"]}


@bp.route("/")
@admin_required
def page():
    conn = get_db()
    state = _page_state(conn)
    # The banner tells the latest outcome once: read is read.  While an import runs, an older
    # outcome would only confuse, so none is shown then.
    latest = next((r for r in state["history"] if r["result"] != "stale"), None)
    banner = None
    if latest and not state["running"] and latest["id"] > session.get("imports_read", 0):
        banner = latest
        session["imports_read"] = latest["id"]
    return render_template("admin/imports.html", **state, banner=banner, keys=trust.list_keys(conn),
                           channels=trust.all_channel_states(conn))


@bp.route("/live")
@admin_required
def live():
    """The running-imports section alone, which the page's script swaps in while imports run."""
    return render_template("admin/imports_running.html", running=_page_state(get_db())["running"])


@bp.route("/progress.json")
@admin_required
def progress():
    jobs_now = _jobs(main=get_db())
    return jsonify({"jobs": jobs_now, "running": any(j["state"] == "running" for j in jobs_now[:5])})


def init_app(app) -> None:
    app.register_blueprint(bp)
    admin_nav(app, "内容导入", "admin_imports.page", order=30)
