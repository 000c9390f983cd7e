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


REPLAY_EVERY = 300  # seconds between replay attempts (a link that is down is not asked every tick)
_last_replay = [0.0]


def due(cfg, now: float | None = None) -> str | None:
    """``"relay"``, ``"replay"`` or None: asked in the scheduler itself (one query), so an idle node does
    not start a Python child every ``live.check_seconds``."""
    from edgenode.core import windows
    from edgenode.core.db import open_main
    from edgenode.node.live import queries as q

    now = time.time() if now is None else now
    conn = open_main(cfg)
    try:
        if q.due(conn, now, cfg["live.lead_seconds"]) is not None:
            return "relay"
        if now - _last_replay[0] < REPLAY_EVERY or not q.awaiting_replay(conn, now, 0):
            return None
    finally:
        conn.close()
    from datetime import datetime
    if not windows.allowance(windows.parse_windows(cfg["sync.windows"]), "pull", datetime.fromtimestamp(now)).allowed:
        return None
    _last_replay[0] = now
    return "replay"


def tick(cfg):
    if due(cfg) is None:
        return {"state": "idle"}
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
