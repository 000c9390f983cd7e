"""A SQLite connection that fails at the Nth statement: fault injection for the suite (issue 16)."""

from __future__ import annotations

import sqlite3


FAULTS = {
    "SQLITE_FULL": ("database or disk is full", "E_DISK_FULL"),
    "SQLITE_BUSY": ("database is locked", "E_DB_BUSY"),
    "SQLITE_IOERR": ("disk I/O error", "E_DB_IO"),
}


class Injected(sqlite3.OperationalError):
    pass


class FaultyConnection:
    """The node's connection, but statement number ``fail_at`` (or the first statement that is
    ``fail_on``, e.g. "COMMIT") raises ``fault``, once.

    ROLLBACK always passes, as SQLite's own would after a failed statement.
    """

    def __init__(self, conn: sqlite3.Connection, fail_at: int | None = None, fault: str = "SQLITE_FULL", *,
                 fail_on: str | None = None):
        self._conn, self.fail_at, self.fail_on, self.fault = conn, fail_at, fail_on, fault
        self.count, self.fired = 0, False

    def _maybe_fail(self, sql) -> None:
        text = sql.strip().upper() if isinstance(sql, str) else ""
        if text.startswith("ROLLBACK"):
            return
        self.count += 1
        if not self.fired and (self.count == self.fail_at or (self.fail_on and text == self.fail_on)):
            self.fired = True
            err = Injected(FAULTS[self.fault][0])
            err.sqlite_errorname = self.fault
            raise err

    def execute(self, sql, *args, **kw):
        self._maybe_fail(sql)
        return self._conn.execute(sql, *args, **kw)

    def executemany(self, sql, *args, **kw):
        self._maybe_fail(sql)
        return self._conn.executemany(sql, *args, **kw)

    def executescript(self, sql, *args, **kw):
        self._maybe_fail(sql)
        return self._conn.executescript(sql, *args, **kw)

    def __getattr__(self, name):
        return getattr(self._conn, name)
