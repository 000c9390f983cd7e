"""Targets for edgenode.core.jobproc children in tests (importable as ``tests.helpers_jobproc``)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def echo(cfg, *args):
    """What the child saw: its config and arguments, and which modules it loaded."""
    import sys
    return {"data_dir": str(cfg.data_path), "log_level": cfg["log.level"], "windows": cfg["sync.windows"],
            "secret": cfg["web.secret_key"],
            "args": list(args), "pid": os.getpid(), "requests_loaded": "requests" in sys.modules}


def hang_with_a_grandchild(cfg, kind, pidfile):
    """Record a running job of ``kind``, start a grandchild (like rsync or ffmpeg), then hang."""
    from edgenode.core import jobs
    from edgenode.core.db import open_volatile
    v = open_volatile(cfg)
    jobs.start(v, kind, "hangs")
    v.close()
    grandchild = subprocess.Popen(["sleep", "600"])
    Path(pidfile).write_text(f"{os.getpid()} {grandchild.pid}")
    while True:
        time.sleep(1)


def crash(cfg):
    raise RuntimeError("a bug in a job")


def refuse(cfg):
    from edgenode.core.errors import EdgenodeError
    raise EdgenodeError("E_TEST_REFUSED", "not today", zh="今天不行", status=409)
