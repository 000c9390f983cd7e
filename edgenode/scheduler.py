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

Each run happens in a child process (:mod:`edgenode.jobproc`): the memory a
pull or an import needs goes back to the system when the run ends, and a crash
stays in the child.  The scheduler's threads only wait for their children, so
``max_instances=1`` and the two threads below still mean what they say.

Jobs: ``uplink``, ``heartbeat``, ``pull`` (these three check the windows and the
link), ``spool_scan`` and ``housekeeping`` (local).  At each window opening,
uplink → heartbeat → pull run in that order: the usage goes up before the long
content transfer takes the link.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from datetime import datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from edgenode import jobproc, jobs
from edgenode.db import open_volatile
from edgenode.sync import runner, windows

log = logging.getLogger(__name__)
MISFIRE_GRACE_SECONDS = 900
ORDER = runner.LINK_ORDER  # the pull last: it can hold the link for hours
HOOKS = ("edgenode.storage.jobs",)  # modules with schedule(sched, cfg) adding their own jobs


def intervals(cfg) -> dict[str, int]:
    """Seconds between runs of each job."""
    return {"uplink": cfg["sync.uplink_minutes"] * 60, "heartbeat": cfg["sync.heartbeat_minutes"] * 60,
            "pull": cfg["sync.pull_minutes"] * 60, "spool_scan": cfg["sync.spool_scan_minutes"] * 60,
            "housekeeping": cfg["sync.housekeeping_hours"] * 3600}


def first_run(vconn, kind: str, every: int, now: datetime) -> datetime:
    last = jobs.recent(vconn, kind, limit=1)
    if not last:  # a new node: the link jobs soon, in order; housekeeping (VACUUM) not at every boot
        return now + timedelta(seconds=5 + 10 * ORDER.index(kind) if kind in ORDER else
                               every if kind == "housekeeping" else 30)
    due = datetime.fromtimestamp(last[0]["started_at"]) + timedelta(seconds=every)
    return max(due, now + timedelta(seconds=5))


RUN_JOB = "edgenode.sync.runner:run_job"
RUN_IN_ORDER = "edgenode.sync.runner:run_in_order"


def recorded_kinds(*kinds: str) -> tuple[str, ...]:
    """The ``jobs`` rows a run of these kinds may leave: pulls and spool scans import bundles."""
    return (*kinds, "import") if {"pull", "spool_scan"} & set(kinds) else kinds


def window_open(cfg):
    """The uplink jobs, in order, at a window's opening (one child process runs all three)."""
    return jobproc.run(cfg, RUN_IN_ORDER, list(ORDER), kinds=recorded_kinds(*ORDER))


def build(cfg, *, blocking: bool = True, now: datetime | None = None):
    """A configured (not started) scheduler."""
    now = now or datetime.now()
    cls = BlockingScheduler if blocking else BackgroundScheduler
    # Two threads: a pull that holds the link for hours must not stop heartbeats or spool scans.
    sched = cls(jobstores={"default": MemoryJobStore()}, executors={"default": ThreadPoolExecutor(2)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS})
    vconn = open_volatile(cfg)
    try:
        for kind, every in intervals(cfg).items():
            sched.add_job(jobproc.run, IntervalTrigger(seconds=every, start_date=first_run(vconn, kind, every, now)),
                          args=[cfg, RUN_JOB, kind], kwargs={"kinds": recorded_kinds(kind)}, id=f"edgenode-{kind}",
                          name=kind, replace_existing=True)
    finally:
        vconn.close()
    for name in HOOKS:  # other areas add their own jobs (e.g. idle-time transcoding)
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "schedule"):
            mod.schedule(sched, cfg)
    day_names = windows.DAYS
    for i, w in enumerate(windows.parse_windows(cfg["sync.windows"])):
        start = w.start % 1440
        sched.add_job(window_open, CronTrigger(hour=start // 60, minute=start % 60,
                                               day_of_week=",".join(day_names[d] for d in sorted(w.days))),
                      args=[cfg], id=f"edgenode-window-{i}", name=f"window {i + 1} opens", replace_existing=True)
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


def sync_now(cfg, kinds: list[str] | None = None, **options) -> list[dict]:
    """``edgenode sync now``: the chosen jobs immediately, ignoring windows and back-off."""
    return runner.run_in_order(cfg, kinds or list(ORDER), ignore_windows=True, **options)
