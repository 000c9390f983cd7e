"""The optional status hook (LED, beep) run after a USB or spool import."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess

log = logging.getLogger(__name__)


def run_hook(cfg, results) -> int | None:
    """Run ``bundles.hook_command`` with the outcome in its environment; never fails the import."""
    command = cfg.bundles.hook_command
    if not command or not results:
        return None
    ok = all(r.ok for r in results)
    summary = "；".join(r.summary_zh() for r in results)
    env = {**os.environ, "EDGENODE_IMPORT_RESULT": "ok" if ok else "failed", "EDGENODE_IMPORT_SUMMARY": summary,
           "EDGENODE_IMPORT_COUNT": str(len(results))}
    try:
        proc = subprocess.run(shlex.split(command), env=env, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("E_HOOK_FAILED: %s: %s", command, e)
        return None
    if proc.returncode:
        log.warning("E_HOOK_FAILED: %s exited %s", command, proc.returncode)
    return proc.returncode
