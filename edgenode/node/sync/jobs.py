"""Sync's additions to the one scheduler: at each window's opening, the link jobs in order.

uplink → heartbeat → pull, in one child process: the usage goes up before the
long content transfer takes the link.
"""

from __future__ import annotations

from edgenode.core import jobproc, windows
from edgenode.core.scheduler import link_order, recorded_kinds

RUN_IN_ORDER = "edgenode.node.sync.runner:run_in_order"


def window_open(cfg):
    """The link jobs, in order, at a window's opening (one child process runs them all)."""
    order = link_order()
    return jobproc.run(cfg, RUN_IN_ORDER, order, kinds=recorded_kinds(*order))


def schedule(sched, cfg) -> None:
    from apscheduler.triggers.cron import CronTrigger

    for i, w in enumerate(windows.parse_windows(cfg["sync.windows"])):
        start = w.start % 1440
        sched.add_job(window_open, CronTrigger(hour=start // 60, minute=start % 60,
                                               day_of_week=",".join(windows.DAYS[d] for d in sorted(w.days))),
                      args=[cfg], id=f"edgenode-window-{i}", name=f"window {i + 1} opens", replace_existing=True)
