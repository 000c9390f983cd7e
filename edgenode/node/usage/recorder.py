"""Group commit for usage events: one writer thread per process.

A write transaction on the appliance's disk costs an fsync (~5-10 ms with
``synchronous=FULL``), and SQLite lets one writer in at a time, so a commit
per page view would cap the whole portal at ~150 pages/s.  Instead every
request hands its events to this process's writer, which commits whatever
has queued since its last commit in one transaction: the same fsync covers
many requests, and a request's events are never split across transactions.

* Page views do not wait: the page is answered at once, and its events are
  on disk a few milliseconds later.  A crash in between loses only those
  not-yet-committed views, never anything already committed.
* Beacons wait for the commit (``wait=True``), so their answer means "stored"
  and a failure can be reported (503) and logged.

Framework-free; the thread starts lazily in each process, so it is created
after gunicorn forks its workers.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from edgenode.core import db
from edgenode.node.usage import events as usage_events
from edgenode.node.usage import recorder_queries

log = logging.getLogger(__name__)


class _Item:
    __slots__ = ("events", "done", "error")

    def __init__(self, evs: list[dict]):
        self.events = evs
        self.done = threading.Event()
        self.error: BaseException | None = None


class Recorder:
    def __init__(self, db_path):
        self.db_path = db_path
        self._cv = threading.Condition()
        self._queue: list[_Item] = []
        self._busy = False
        self._pid: int | None = None
        self._conn = None

    def submit(self, evs: list[dict], *, wait: bool = False, timeout: float = 10) -> None:
        """Queue one request's events; with ``wait`` block until committed (raises on failure)."""
        item = _Item(evs)
        with self._cv:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._start()
            self._queue.append(item)
            self._cv.notify()
        if wait:
            if not item.done.wait(timeout):
                raise TimeoutError("usage writer did not commit in time")
            if item.error is not None:
                raise item.error

    def flush(self, timeout: float = 10) -> None:
        """Wait until everything queued so far is committed (tests, shutdown)."""
        with self._cv:
            self._cv.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue, self._busy, self._conn = [], False, None
        threading.Thread(target=self._run, name="usage-writer", daemon=True).start()
        atexit.register(self.flush, 5)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._queue)
                batch, self._queue, self._busy = self._queue, [], True
            try:
                if self._conn is None:
                    self._conn = db.connect(self.db_path)
                    # Appends touch only the table's tail and its index: a small cache does, and
                    # SQLite's default 2 MiB would fill with pages this connection never reads again.
                    recorder_queries.limit_page_cache(self._conn, 256)
                usage_events.record(self._conn, [e for item in batch for e in item.events])
            except Exception as e:
                log.warning("E_USAGE_RECORD: dropped %d usage events from %d requests: %s",
                            sum(len(i.events) for i in batch), len(batch), e)
                for item in batch:
                    item.error = e
            for item in batch:
                item.done.set()
            with self._cv:
                self._busy = False
                self._cv.notify_all()
