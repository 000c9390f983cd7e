"""SQLite connections, transactions and migrations.

Two files under the data directory:

* ``edgenode.db``: the catalogue, trust store, import history, usage events and
  outbox index.  ``synchronous=FULL`` in WAL mode: a commit is on disk before
  it returns, so a power cut never loses what was acknowledged.
* ``volatile.db``: jobs and progress.  ``synchronous=NORMAL``; losing it loses
  nothing that cannot be recomputed, and it is rebuilt when corrupt.

Each area owns its schema as a list of numbered migrations in its own
``schema.py``, declared in the area's ``area.py`` (see ``core/registry.py``); ``schema_migrations`` records what ran.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from edgenode.core import jobs, registry
from edgenode.core.errors import DatabaseError

log = logging.getLogger(__name__)

# A schema module exposes AREA and MIGRATIONS = [(version, name, sql_or_callable), ...].  The main
# database's come from the areas' declarations (core.registry); the volatile one holds core's jobs
# table and whatever an area declares as volatile.


DEFAULT_BUSY_MS = 10_000  # db.busy_timeout_ms's default, for connections opened without a config


def connect(path: Path | str, *, synchronous: str = "FULL", readonly: bool = False,
            busy_ms: int = DEFAULT_BUSY_MS) -> sqlite3.Connection:
    """Open a connection with the project's PRAGMAs.

    Autocommit mode (``isolation_level=None``): writers open their own short
    ``BEGIN IMMEDIATE`` transactions through :func:`transaction`.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False, timeout=busy_ms / 1000)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_ms / 1000)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as e:
        conn.close()
        raise DatabaseError(f"{path}: cannot open database: {e}. "
                            "Restore it from a backup (see docs/operations.md).") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A short write transaction that takes the write lock up front."""
    if conn.in_transaction:  # nested: join the outer one
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        # A failed COMMIT (SQLITE_BUSY, say) leaves the transaction open.  Left so, every later
        # transaction() on this connection would join it as "nested" and never commit: silent
        # loss of all the process writes afterwards.  So a failed COMMIT rolls back too.
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (SQLITE_FULL, IOERR)
            conn.execute("ROLLBACK")
        raise


def quick_check(conn: sqlite3.Connection, path: Path | str) -> None:
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as e:
        raise DatabaseError(f"{path}: integrity check could not run: {e}. "
                            "Restore it from a backup (see docs/operations.md).") from None
    if rows != ["ok"]:
        detail = "; ".join(rows[:5])
        raise DatabaseError(f"{path}: integrity check failed: {detail}. "
                            "Restore it from a backup (see docs/operations.md).")


def migrate(conn: sqlite3.Connection, modules: list) -> list[str]:
    """Apply every pending migration of these schema modules; returns the names applied."""
    conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
        area TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
        applied_at REAL NOT NULL, PRIMARY KEY (area, version))""")
    applied = []
    for mod in modules:
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations WHERE area = ?", (mod.AREA,))}
        for version, name, step in mod.MIGRATIONS:
            if version in done:
                continue
            with transaction(conn):
                if callable(step):
                    import sqlite_utils  # only Python-step migrations need it; keeps web workers lighter
                    step(sqlite_utils.Database(conn))
                else:
                    for statement in _statements(step):
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)",
                             (mod.AREA, version, name, time.time()))
            applied.append(f"{mod.AREA}:{version:04d}_{name}")
            log.info("applied migration %s:%04d_%s", mod.AREA, version, name)
    return applied


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on complete statements instead.
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def vacuum(conn: sqlite3.Connection) -> None:
    """Refresh the planner's statistics and give freed pages back (housekeeping; outside a transaction)."""
    conn.execute("PRAGMA optimize")
    conn.execute("VACUUM")


def migrations_state(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT area, version, name, applied_at FROM schema_migrations ORDER BY area, version")]


def open_migrated(path: Path, schemas: list, *, check: bool = False,
                  restore_doc: str = "docs/operations.md", busy_ms: int = DEFAULT_BUSY_MS) -> sqlite3.Connection:
    """Open a durable database file, creating and migrating it as needed.

    ``check=True`` runs ``PRAGMA quick_check`` first: done once at start-up of
    each process, not per request.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path, busy_ms=busy_ms)
    try:
        if check:
            quick_check(conn, path)
        migrate(conn, schemas)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise DatabaseError(f"{path}: {e}. Restore it from a backup (see {restore_doc}).") from None
    except BaseException:
        conn.close()
        raise
    return conn


def open_main(cfg, *, check: bool = False) -> sqlite3.Connection:
    """The node's main database (catalogue, trust, imports, usage, outbox index)."""
    return open_migrated(cfg.db_path, registry.schemas("main"), check=check, busy_ms=cfg["db.busy_timeout_ms"])


def open_volatile(cfg) -> sqlite3.Connection:
    """Open the jobs/progress database; a corrupt one is set aside and rebuilt."""
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    path = cfg.volatile_db_path
    try:
        conn = connect(path, synchronous="NORMAL")
        quick_check(conn, path)
    except DatabaseError as e:
        log.warning("E_VOLATILE_RESET: %s; setting it aside and starting empty", e)
        try:
            conn.close()
        except Exception:
            pass
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(path) + suffix)
            if p.exists():
                p.replace(Path(str(p) + f".corrupt-{int(time.time())}"))
        conn = connect(path, synchronous="NORMAL")
    migrate(conn, [jobs, *registry.schemas("volatile")])
    return conn
