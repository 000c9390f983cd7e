"""Live's addition to the one scheduler: every ``live.check_seconds``, the relay or replay child.

The child (:func:`child`) runs the whole window of a broadcast, so it has an
executor of its own: the two shared threads stay free for the pull and the
heartbeat.  ``max_instances=1``: while the relay runs, the ticks find it
running and do nothing; when it dies (a SIGKILL, a crash) the next tick starts
another, which continues from the segments on disk.
"""

from __future__ import annotations

import time

from edgenode.core import jobproc
from edgenode.core.errors import EdgenodeError

TICK = "edgenode.node.live.jobs:child"


def tick(cfg):
    return jobproc.run(cfg, TICK, kinds=("live", "live_replay", "import"))


def child(cfg) -> dict:
    """The scheduler's child: relay the broadcast on now, else work on the replays due (``replay.py``)."""
    from edgenode.core import jobs
    from edgenode.core.db import open_main, open_volatile
    from edgenode.node.live import queries as q, relay, replay

    conn, vconn = open_main(cfg), open_volatile(cfg)
    try:
        b = q.due(conn, time.time(), cfg["live.lead_seconds"])
        if b is None:
            return replay.run_due(cfg, conn, vconn)
        job = jobs.start(vconn, "live", f"live {b['key']}")
        try:
            r = relay.relay(cfg, conn, b)
        except EdgenodeError as e:
            jobs.finish(vconn, job, "failed", e.cli_message())
            return {"state": "failed", "message": e.cli_message()}
        jobs.finish(vconn, job, "done", f"{b['key']}: {r['state']}, {r['segments']} segments", r)
        return r
    finally:
        conn.close()
        vconn.close()


def schedule(sched, cfg) -> None:
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.triggers.interval import IntervalTrigger

    sched.add_executor(ThreadPoolExecutor(1), alias="live")
    sched.add_job(tick, IntervalTrigger(seconds=cfg["live.check_seconds"]), args=[cfg], id="edgenode-live",
                  name="live relay and replays", executor="live", replace_existing=True)
