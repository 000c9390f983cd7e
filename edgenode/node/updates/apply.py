"""The updater: install a staged release with a health gate, and put the old one back on any failure.

Order (each phase written to the journal, fsynced, before it starts):

``building``  the new release directory is built; the portal keeps serving;
``packages``  the Debian packages the release carries are installed (node/updates/debs.py);
``stopping``  portal and scheduler stop (``updates.stop_command``);
``backup``    the database is copied with SQLite's online backup and checked;
``switched``  ``current_link`` is renamed over to the new release;
``migrating`` the new release's ``edgenode db check`` runs its migrations;
``gate``      the services start on the new release and the health gate runs.

Passing the gate is the commit: the journal's ``attempt`` is replaced by ``last: committed`` in
one rename.  Anything else (a failed step, a failed gate, and at start-up an ``attempt`` left by
a killed updater or a power cut) goes back: stop, link to the old release, the backup copied
back into the database with SQLite's backup API (itself one transaction), start.  So the node
always runs the old release or the new one, and a failed update reports
``E_UPDATE_ROLLED_BACK`` with its reason in the next heartbeat.
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import subprocess
import time
from pathlib import Path

from edgenode import __version__
from edgenode.core.backup import backup_db, prune
from edgenode.core.errors import EdgenodeError
from edgenode.node.updates import db_queries, debs, gate, releases, stage, state

log = logging.getLogger(__name__)
ROLLED_BACK = "E_UPDATE_ROLLED_BACK"
MAX_INTERRUPTED = 3  # a version interrupted this often (power cuts) is treated as failed


def _services(cfg, which: str) -> None:
    argv = shlex.split(cfg[f"updates.{which}_command"])
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if res.returncode:
        raise EdgenodeError("E_UPDATE_SERVICES", f"{which} command failed: {(res.stderr or res.stdout).strip()[-300:]}",
                            zh="无法启动或停止服务")


def _phase(cfg, attempt: dict, phase: str, **extra) -> None:
    attempt.update(phase=phase, **extra)
    state.set_keys(cfg, attempt=attempt)


def _migrate(cfg, new: Path) -> None:
    env = {**os.environ, "EDGENODE_DATA_DIR": str(cfg.data_path)}
    argv = [str(new / "bin" / "edgenode"), "db", "check"]
    owner = cfg.db_path.stat().st_uid
    if os.geteuid() == 0 and owner != 0:  # as upgrade.sh: the migrations run as the service user
        import pwd
        argv = ["runuser", "-u", pwd.getpwuid(owner).pw_name, "--", *argv]
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
    if res.returncode:
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-2:])
        raise EdgenodeError("E_UPDATE_MIGRATION", f"migrations failed: {tail}"[:400], zh="数据库升级失败")


def apply(cfg, *, version: str | None = None) -> dict:
    """Install the staged release (the one named, or whatever is staged) now."""
    with state.updater_lock(cfg, wait=False) as held:
        if not held:
            raise EdgenodeError("E_UPDATE_BUSY", "another updater is running", zh="已有更新正在进行")
        doc = state.load(cfg)
        if doc.get("attempt"):
            recover(cfg, locked=True)
            doc = state.load(cfg)
        staged = doc.get("staged")
        if not staged or (version and staged.get("version") != version):
            raise EdgenodeError("E_UPDATE_NOTHING", f"no staged release{' ' + version if version else ''}",
                                zh="没有待安装的新版本")
        release = stage.verify_staged(cfg, Path(staged["dir"]))
        old = releases.current(cfg)
        if old is None:
            raise EdgenodeError("E_UPDATE_LINK", f"{cfg['updates.current_link']} is not a release link",
                                zh="程序目录不是版本链接")
        attempt = {"version": release.version, "from": __version__, "old": str(old), "new": None,
                   "backup": None, "started_at": time.time(), "interrupted": _interrupted(doc, release.version)}
        _phase(cfg, attempt, "building")
        try:
            new = releases.build(cfg, release, Path(staged["dir"]))
            if release.debs:  # as root, while the portal still serves; only what is missing or older
                _phase(cfg, attempt, "packages", new=str(new))
                attempt["debs"] = debs.install(cfg, release, Path(staged["dir"]))
        except EdgenodeError as e:
            return _finish(cfg, attempt, "rolled_back", f"{e.code}: {e.message}")
        return _switch_and_gate(cfg, attempt, new)


def _switch_and_gate(cfg, attempt: dict, new: Path) -> dict:
    _phase(cfg, attempt, "stopping", new=str(new))
    t_down = time.time()
    try:
        _services(cfg, "stop")
        backup = backup_db(cfg.db_path, cfg.data_path / "backups")
        os.sync()
        prune(cfg.data_path / "backups", keep=5)
        _phase(cfg, attempt, "switched", backup=str(backup))
        releases.switch(cfg, new)
        _phase(cfg, attempt, "migrating")
        _migrate(cfg, new)
        _phase(cfg, attempt, "gate")
        started = time.time()
        _services(cfg, "start")
    except (EdgenodeError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        code = getattr(e, "code", type(e).__name__)
        return _rollback(cfg, attempt, f"{code}: {getattr(e, 'message', e)}")
    ok, reason, checks = gate.run(cfg, attempt["version"], started)
    if not ok:
        return _rollback(cfg, attempt, f"health gate failed: {reason}", checks)
    out = _finish(cfg, attempt, "committed", "", checks, downtime_from=t_down)
    releases.prune(cfg, [new, Path(attempt["old"])])
    return out


def _rollback(cfg, attempt: dict, reason: str, checks: dict | None = None) -> dict:
    log.warning("%s: update to %s: %s", ROLLED_BACK, attempt["version"], reason)
    phase = attempt.get("phase")
    _phase(cfg, attempt, "rolling_back", reason=reason)
    try:
        _services(cfg, "stop")
    except EdgenodeError as e:
        log.warning("stopping the services for the rollback: %s", e.message)
    releases.switch(cfg, Path(attempt["old"]))
    if attempt.get("backup") and phase in ("switched", "migrating", "gate", "rolling_back"):
        db_queries.restore(cfg.db_path, Path(attempt["backup"]))
    _services(cfg, "start")
    return _finish(cfg, attempt, "rolled_back", reason, checks)


def _interrupted(doc: dict, version: str) -> int:
    last = doc.get("last") or {}
    return int(last.get("interrupted", 0)) if last.get("version") == version else 0


def _finish(cfg, attempt: dict, outcome: str, reason: str, checks: dict | None = None, *,
            downtime_from: float | None = None) -> dict:
    now = time.time()
    last = {"version": attempt["version"], "from": attempt.get("from"), "state": outcome, "at": now,
            "checks": checks or {}}
    if outcome == "rolled_back":
        last.update(code=ROLLED_BACK, reason=reason)
    if outcome == "interrupted":
        last.update(reason=reason, interrupted=attempt.get("interrupted", 0) + 1)
    if attempt.get("debs"):
        last["debs"] = attempt["debs"]
    if downtime_from is not None:
        last["seconds_down"] = round(now - downtime_from, 2)
    with state.edit(cfg) as doc:
        doc.pop("attempt", None)
        doc["last"] = last
        if outcome != "interrupted" or last.get("interrupted", 0) >= MAX_INTERRUPTED:
            doc.pop("staged", None)
            doc.pop("go", None)
        if outcome == "rolled_back" or last.get("interrupted", 0) >= MAX_INTERRUPTED:
            doc["failed"] = sorted(set(doc.get("failed", [])) | {attempt["version"]})
    return last


def recover(cfg, *, start: bool = False, stop: bool = False, locked: bool = False) -> dict:
    """At start-up (and after a killed updater): an unfinished attempt goes back to the old release.

    ``stop``: the services may be running (an updater killed while the system stayed up), so stop
    them before the switch back; at boot they are not yet started.  ``start``: start them after.
    """
    if not locked:
        with state.updater_lock(cfg, wait=False) as held:
            if not held:
                return {"state": "updater running"}
            return recover(cfg, start=start, stop=stop, locked=True)
    # A request to update (updates/apply-now) from before the cut is withdrawn: the scheduler asks again
    # when it is time, not at whatever hour the power came back.
    (state.root(cfg) / state.REQUEST).unlink(missing_ok=True)
    attempt = state.load(cfg).get("attempt")
    if not attempt:
        if start:
            _services(cfg, "start")
        return {"state": "clean"}
    phase = attempt.get("phase")
    reason = f"interrupted during {phase} (power cut or killed updater)"
    log.warning("update to %s %s: going back to %s", attempt.get("version"), reason, attempt.get("old"))
    if phase in ("building", "packages"):  # nothing switched yet; dpkg finishes what it had unpacked
        if phase == "packages":
            log.warning("Debian packages after the interruption: %s", debs.finish_interrupted(cfg))
        out = _finish(cfg, attempt, "interrupted", reason)
        if start:
            _services(cfg, "start")
        return out
    if stop:
        try:
            _services(cfg, "stop")
        except EdgenodeError as e:
            log.warning("stopping the services for the recovery: %s", e.message)
    releases.switch(cfg, Path(attempt["old"]))
    if attempt.get("backup") and phase in ("switched", "migrating", "gate", "rolling_back"):
        db_queries.restore(cfg.db_path, Path(attempt["backup"]))
    if phase == "rolling_back":
        out = _finish(cfg, attempt, "rolled_back", attempt.get("reason") or reason)
    else:
        out = _finish(cfg, attempt, "interrupted", reason)
    if start:
        _services(cfg, "start")
    return out
