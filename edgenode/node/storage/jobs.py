"""Storage's scheduled work, for the one scheduler process (``edgenode/core/scheduler.py``).

Like every scheduled job, a tick runs in its own process (``edgenode/core/jobproc.py``).
Transcoding gets its own one-thread executor: a file can take an hour, and the
scheduler's shared threads must stay free for heartbeats and pulls.  The job
fires every ``TICK_MINUTES``; :func:`edgenode.node.storage.transcode.run` itself
checks the idle hours before every file, so a tick outside them does nothing.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
TICK_MINUTES = 10


def transcode_tick(cfg) -> dict:
    from edgenode.core.db import open_main
    from edgenode.node.storage import eviction, state, transcode
    from edgenode.core.store import open_store

    conn = open_main(cfg)
    try:
        state.reconcile(conn)  # an import since the last tick may have brought requested files back
        eviction.refresh_last_played(conn)  # keeps an import's eviction decision reading only new plays
        return transcode.run(conn, open_store(cfg), cfg)
    finally:
        conn.close()


def schedule(sched, cfg) -> None:
    """Add the storage jobs to an APScheduler scheduler (called from ``scheduler.build``)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.triggers.interval import IntervalTrigger

    if not cfg["transcode.enabled"]:
        return
    sched.add_executor(ThreadPoolExecutor(1), "storage")
    from edgenode.core import jobproc

    sched.add_job(jobproc.run, IntervalTrigger(minutes=TICK_MINUTES), args=[cfg, "edgenode.node.storage.jobs:transcode_tick"],
                  id="edgenode-transcode", name="transcode", executor="storage", replace_existing=True)
