"""The scheduler's side: install a staged release in the maintenance window, and say it is alive.

The ``update`` job decides; the updater itself runs outside the scheduler's service (it stops
that service) and as root (dpkg, the release link): on a node, the job writes
``updates/apply-now`` and systemd's ``edgenode-update.path`` starts ``edgenode-update.service``;
without systemd (tests, development), a detached process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from edgenode import __version__
from edgenode.core import windows
from edgenode.core.db import open_main
from edgenode.core.idle import is_idle
from edgenode.node.sync import enroll
from edgenode.node.updates import gate, stage, state

log = logging.getLogger(__name__)
REQUEST = state.REQUEST


def decide(cfg, conn, now: datetime | None = None) -> tuple[str | None, str]:
    """(version to install now, or None; why)."""
    now = now or datetime.now()
    doc = state.load(cfg)
    staged, go = doc.get("staged") or {}, (doc.get("go") or {}).get("version")
    if doc.get("attempt"):
        return None, "an update is under way"
    if cfg["updates.require_hub"] and enroll.enrolment(conn) is not None:
        if not go:
            return None, "the hub has not asked for an update"
        if staged.get("version") != go:
            return None, f"the hub asks for {go}; it is not staged yet"
    if not staged:
        return None, "no release staged"
    if not is_idle(cfg["updates.hours"], now):
        return None, f"outside the update hours {cfg['updates.hours']}"
    return staged["version"], "staged, asked for and in the update hours"


def request(cfg, version: str) -> Path:
    """Ask systemd for the updater: ``edgenode-update.path`` starts ``edgenode-update.service`` (root)
    when this file appears.  The scheduler, unprivileged and sandboxed, may not start a unit itself."""
    path = state.root(cfg) / REQUEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": version, "at": time.time()}), encoding="utf-8")
    os.replace(tmp, path)
    return path


def take_request(cfg) -> str | None:
    """The version the scheduler asked for, consumed (``update apply --requested``); None if none."""
    path = state.root(cfg) / REQUEST
    try:
        version = json.loads(path.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        version = None
    path.unlink(missing_ok=True)
    return version if isinstance(version, str) else None


def launch(cfg, version: str) -> list[str]:
    """Start ``edgenode update apply`` where stopping the scheduler cannot kill it."""
    exe = str(Path(sys.executable).parent / "edgenode")
    argv = [exe, "--data-dir", str(cfg.data_path), "update", "apply", "--version", version]
    if cfg["updates.launcher"] == "path":
        return ["request", str(request(cfg, version))]
    if cfg["updates.launcher"] == "systemd-run":
        # ExecStopPost: whatever ends the updater (even SIGKILL), recovery runs after it.
        argv = ["systemd-run", "--unit", "edgenode-update", "--collect", "--property",
                f"ExecStopPost={exe} --data-dir {cfg.data_path} update recover --stop --start", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    else:
        log_path = state.root(cfg) / "updater.log"
        with open(log_path, "ab") as out:
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                             env={**os.environ, "EDGENODE_DATA_DIR": str(cfg.data_path)})
    return argv


def run_update(cfg, kind: str, **options) -> dict:
    """The ``update`` job: fetch what the hub asks for, then install it if it is time."""
    conn = open_main(cfg)
    try:
        doc = state.load(cfg)
        go = (doc.get("go") or {}).get("version")
        fetched = None
        if go and (doc.get("staged") or {}).get("version") != go and cfg["sync.rsync_url"]:
            allowance = windows.allowance(windows.parse_windows(cfg["sync.windows"]), "pull", datetime.now())
            if allowance.allowed:
                fetched = stage.fetch(cfg, conn, want=go)
        version, why = decide(cfg, conn)
    finally:
        conn.close()
    if version is None:
        return {"state": "waiting", "message": why, "fetched": fetched}
    launch(cfg, version)
    return {"state": "started", "message": f"updater started for {version}", "fetched": fetched}


def write_alive(cfg) -> None:
    """The health gate's proof that this release's scheduler runs."""
    path = state.root(cfg) / gate.ALIVE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": __version__, "pid": os.getpid(), "at": time.time()}), encoding="utf-8")
    os.replace(tmp, path)


def schedule(sched, cfg) -> None:
    from apscheduler.triggers.interval import IntervalTrigger

    write_alive(cfg)
    sched.add_job(write_alive, IntervalTrigger(seconds=60), args=[cfg], id="edgenode-alive", name="alive",
                  replace_existing=True)
