"""The one scheduler process (``edgenode scheduler``; its own systemd service).

Never inside the web workers: APScheduler's FAQ says a job store cannot be shared
between processes, and a pull can run for hours.

Job store: APScheduler's ``MemoryJobStore``, deliberately.  The schedule is
derived from the config at every start (stable ids + ``replace_existing``), and
the *state* that a persistent store would keep — when each job last ran — is
already in the volatile ``jobs`` table.  At start-up each interval job's first
run is placed at ``last run + interval`` (now, if that is past), which gives
what a persistent store's misfire handling would, without SQLAlchemy.

* ``coalesce=True``: runs missed while the machine slept collapse into one.
* ``max_instances=1``: a slow pull never overlaps itself.
* ``misfire_grace_time`` = 15 min: a run delayed by a busy machine still happens
  if it is late by less than that; a longer delay waits for the next interval
  (the windows decide anyway, and a late run may fall outside its window).

Each run happens in a child process (:mod:`edgenode.core.jobproc`): the memory a
pull or an import needs goes back to the system when the run ends, and a crash
stays in the child.  The scheduler's threads only wait for their children, so
``max_instances=1`` and the two threads below still mean what they say.

Jobs come from the areas' declarations (``core.registry``): each ``Job`` names
its interval setting and the function its child runs.  The node's are sync's
(``node/sync/area.py``: uplink, heartbeat, pull, spool scan, housekeeping); sync
also adds the window openings, storage the idle-time transcoding.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from edgenode.core import jobproc, jobs, registry
from edgenode.core.db import open_volatile

log = logging.getLogger(__name__)
MISFIRE_GRACE_SECONDS = 900


def intervals(cfg) -> dict[str, int]:
    """Seconds between runs of each registered job."""
    return {kind: cfg[j.every_setting] * j.unit_seconds for kind, j in registry.jobs().items()}


def link_order() -> list[str]:
    """The link jobs in the order they run at a window's opening (the pull last: it can hold the
    link for hours)."""
    return [j.kind for j in sorted(registry.jobs().values(), key=lambda j: j.order) if j.link]


def first_run(vconn, kind: str, every: int, now: datetime) -> datetime:
    last = jobs.recent(vconn, kind, limit=1)
    if not last:  # a new node: the link jobs soon, in order; housekeeping (VACUUM) not at every boot
        job, order = registry.jobs().get(kind), link_order()
        if kind in order:
            return now + timedelta(seconds=5 + 10 * order.index(kind))
        return now + timedelta(seconds=every if job is not None and job.start_late else 30)
    due = datetime.fromtimestamp(last[0]["started_at"]) + timedelta(seconds=every)
    return max(due, now + timedelta(seconds=5))


def recorded_kinds(*kinds: str) -> tuple[str, ...]:
    """The ``jobs`` rows a run of these kinds may leave (a pull also leaves ``import`` rows)."""
    table = registry.jobs()
    extra = [k for kind in kinds if kind in table for k in table[kind].records]
    return tuple(dict.fromkeys((*kinds, *extra)))


def build(cfg, *, blocking: bool = True, now: datetime | None = None):
    """A configured (not started) scheduler: every registered job, then each area's own additions."""
    now = now or datetime.now()
    cls = BlockingScheduler if blocking else BackgroundScheduler
    # Two threads: a pull that holds the link for hours must not stop heartbeats or spool scans.
    sched = cls(jobstores={"default": MemoryJobStore()}, executors={"default": ThreadPoolExecutor(2)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS})
    table = registry.jobs()
    vconn = open_volatile(cfg)
    try:
        for kind, every in intervals(cfg).items():
            sched.add_job(jobproc.run, IntervalTrigger(seconds=every, start_date=first_run(vconn, kind, every, now)),
                          args=[cfg, table[kind].run, kind], kwargs={"kinds": recorded_kinds(kind)},
                          id=f"edgenode-{kind}", name=kind, replace_existing=True)
    finally:
        vconn.close()
    for ref in registry.refs("scheduler"):  # areas add their own (sync's window openings, transcoding)
        registry.resolve(ref)(sched, cfg)
    return sched


def stopper(sched):
    """The SIGTERM/SIGINT handler: stop the timetable, then the running jobs' processes.  Safe to call
    again (Ctrl-C twice, or a wrapper such as ``timeout`` passing its own SIGTERM on)."""
    stopping = threading.Event()

    def stop(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        log.info("scheduler: signal %d, shutting down", signum)
        sched.shutdown(wait=False)
        # Off the signal handler: stopping children waits for them (rsync flushing its partial file).
        threading.Thread(target=jobproc.stop_all, name="stop-jobs").start()

    return stop


def serve(cfg) -> None:
    """Run until SIGTERM/SIGINT."""
    sched = build(cfg, blocking=True)
    stop = stopper(sched)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler: %d jobs: %s", len(sched.get_jobs()), ", ".join(j.id for j in sched.get_jobs()))
    sched.start()
