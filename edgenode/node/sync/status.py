"""What the sync jobs are doing: for ``edgenode sync status`` and ``/admin/sync``.

Kept out of ``edgenode/core/scheduler.py`` so that showing it never loads APScheduler
into a web worker (~12 MB that would stay for the worker's life).
"""

from __future__ import annotations

import time
from datetime import datetime

from edgenode.core import jobs
from edgenode.core.db import open_volatile
from edgenode.node.sync import runner
from edgenode.core import windows


def status(cfg, conn) -> dict:
    from edgenode.node.sync import client, enroll, outbox, probe

    vconn = open_volatile(cfg)
    try:
        last = {k: (jobs.recent(vconn, k, limit=1) or [None])[0] for k in runner.KINDS}
    finally:
        vconn.close()
    now = datetime.now()
    ws = windows.parse_windows(cfg["sync.windows"])
    return {"hub_url": client.hub_url(cfg, conn), "rsync_url": cfg["sync.rsync_url"],
            "enrolment": enroll.enrolment(conn), "outbox": outbox.backlog(cfg), "outbox_state": outbox.state(conn),
            "unsealed_events": outbox.unsealed_events(conn), "link": probe.link_state(conn),
            "windows": {k: {"allowed": (a := windows.allowance(ws, k, now)).allowed, "reason": a.reason,
                            "bwlimit": a.bwlimit, "next": (windows.next_opening(ws, k, now) or None)}
                        for k in runner.LINK_ORDER},
            "jobs": {k: ({"state": j["state"], "message": j["message"], "started_at": j["started_at"],
                          "finished_at": j["finished_at"]} if j else None) for k, j in last.items()},
            "at": time.time()}
