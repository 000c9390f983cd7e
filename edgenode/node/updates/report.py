"""What the heartbeat says about software, and what the hub's answer tells the updater.

The heartbeat's ``software`` section: the running version, the staged one, the last update's
outcome (``E_UPDATE_ROLLED_BACK`` and the reason after a rollback), and the Debian security
updates waiting (``apt-get -s upgrade`` lines from a ``-security`` suite, with how long the
oldest has been seen).  The hub's answer may carry ``update: {version}``: this node's ring
of a rollout is open, and the scheduler installs that version in the maintenance window.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

from edgenode import __version__
from edgenode.node.updates import state

SECURITY_LINE = re.compile(r"^Inst (\S+) .*-security", re.M)
APT_CACHE_SECONDS = 6 * 3600


def pending_security(cfg, now: float | None = None) -> dict:
    """Security updates apt would install, cached for a few hours (``apt-get -s`` is slow)."""
    now = time.time() if now is None else now
    path = state.root(cfg) / "security.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if cached.get("checked_at", 0) > now - APT_CACHE_SECONDS:
        return cached
    packages: list[str] = []
    if shutil.which("apt-get"):
        try:
            res = subprocess.run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"], capture_output=True,
                                 text=True, timeout=60)
            packages = sorted(set(SECURITY_LINE.findall(res.stdout)))
        except (OSError, subprocess.SubprocessError):
            packages = cached.get("packages", [])
    since = cached.get("since") if packages and cached.get("packages") else (now if packages else None)
    out = {"packages": packages, "count": len(packages), "since": since, "checked_at": now}
    try:
        path.write_text(json.dumps(out), encoding="utf-8")
    except OSError:
        pass
    return out


def heartbeat_section(cfg, conn) -> dict:
    """The ``sync.heartbeat_extra`` hook: merged into the heartbeat body."""
    doc = state.load(cfg)
    staged = doc.get("staged") or {}
    last = doc.get("last") or {}
    software = {"version": __version__, "staged": staged.get("version"),
                "updating": (doc.get("attempt") or {}).get("version"),
                "last_update": {k: last.get(k) for k in ("version", "state", "code", "reason", "at", "seconds_down")
                                if k in last} or None,
                "security": {k: v for k, v in pending_security(cfg).items() if k != "checked_at"}}
    return {"software": software}


def heartbeat_answer(cfg, conn, answer: dict) -> dict:
    """The ``sync.heartbeat_answer`` hook: remember what the hub's rollout asks of this node."""
    update = answer.get("update")
    version = update.get("version") if isinstance(update, dict) else None
    doc = state.load(cfg)
    if (doc.get("go") or {}).get("version") != version:
        state.set_keys(cfg, go={"version": version, "at": time.time()} if isinstance(version, str) else None)
    return {"update_go": version} if version else {}
