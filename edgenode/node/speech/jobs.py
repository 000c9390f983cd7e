"""朗读's work: the import hook queues, a scheduled job at idle priority speaks.

The import's ``imports.commit`` hook queues the resources it added or changed,
inside the import's own transaction, so a crash either keeps both or neither.
Every ``TICK_MINUTES`` the scheduler runs :func:`speech_tick` in a child process
(``core/jobproc.py``) at nice 19 and idle I/O class: it speaks the queue first,
then anything visible that still has no file (the demo, ``edgenode add``, files
deleted by hand), and empties the queue.
"""

from __future__ import annotations

import logging
import os
import time

from edgenode.core.db import transaction
from edgenode.node.speech import queries as sq
from edgenode.node.speech import voice

log = logging.getLogger(__name__)
TICK_MINUTES = 2
QUEUE_BATCH = 500


def commit_hook(conn, manifest, data, result) -> None:
    """The import pipeline's ``imports.commit`` hook: queue what this import added or changed."""
    sq.queue_changed_since(conn, result.started_at, time.time())


def idle_priority() -> None:
    """This process and the espeak-ng/ffmpeg it starts yield the CPU and the disk to everything else."""
    import psutil
    try:
        os.nice(19 - os.nice(0))
        psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)
    except (OSError, AttributeError, ValueError):
        pass


def run(conn, cfg, *, workers: int = 2) -> dict:
    """Speak the queue, then every visible resource still silent; returns counts."""
    with transaction(conn):
        sq.drop_hidden(conn)
    made = 0
    while True:
        rows = sq.queued(conn, QUEUE_BATCH)
        if not rows:
            break
        made += voice.generate(cfg, [t for r in rows for t in voice.texts_of(r["title"], r["description"]).values()],
                               workers=workers)
        with transaction(conn):
            sq.dequeue(conn, [r["num"] for r in rows])
    texts = [t for r in sq.visible_texts(conn) for t in voice.texts_of(r["title"], r["description"]).values()]
    made += voice.generate(cfg, texts, workers=workers)
    return {"made": made, "texts": len(texts)}


def speech_tick(cfg) -> dict:
    from edgenode.core.db import open_main
    idle_priority()
    conn = open_main(cfg)
    try:
        return run(conn, cfg)
    finally:
        conn.close()


def schedule(sched, cfg) -> None:
    """Add the speech job to an APScheduler scheduler (called from ``scheduler.build``)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.triggers.interval import IntervalTrigger

    from edgenode.core import jobproc

    sched.add_executor(ThreadPoolExecutor(1), "speech")
    sched.add_job(jobproc.run, IntervalTrigger(minutes=TICK_MINUTES), args=[cfg, "edgenode.node.speech.jobs:speech_tick"],
                  id="edgenode-speech", name="speech", executor="speech", replace_existing=True)
