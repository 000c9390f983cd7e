"""Storage SQL, as functions that take the connection first.

Writers expect to run inside :func:`edgenode.core.db.transaction`; the calling
module owns the transaction.  Writes to catalogue tables (resources, blobs,
resource_blobs) live in :mod:`edgenode.node.catalog.queries`.
"""

from __future__ import annotations

import sqlite3

# A resource is on request while its main blob is not recorded as ok: derived from the
# blobs table so a file that comes back plays at once, before state.reconcile runs.
ON_REQUEST_SQL = """SELECT s.resource_num FROM storage_state s
    WHERE s.state IN ('evicted', 'metadata') AND NOT EXISTS (
        SELECT 1 FROM resource_blobs rb JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
        WHERE rb.resource_num = s.resource_num AND rb.role = 'main')"""

CANDIDATES_SQL = """
SELECT r.num, r.id, r.title, rb.sha256, b.size, lp.at AS last_played,
       CASE WHEN r.source IN (SELECT value FROM json_each(:expired)) THEN 'expired'
            WHEN r.channel IN (SELECT value FROM json_each(:never)) THEN 'never'
            ELSE 'lru' END AS reason,
       (:now - coalesce(lp.at, max(r.added_at, coalesce(s.arrived_at, 0)))) * b.size AS score
FROM resources r
JOIN resource_blobs rb ON rb.resource_num = r.num AND rb.role = 'main'
JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
LEFT JOIN storage_state s ON s.resource_num = r.num
LEFT JOIN storage_last_played lp ON lp.resource_id = r.id
WHERE r.withdrawn_at IS NULL
  AND r.channel IS NOT NULL
  AND coalesce(s.pinned, 0) = 0
  AND (r.channel NOT IN (SELECT value FROM json_each(:always))
       OR r.source IN (SELECT value FROM json_each(:expired)))
  AND max(r.added_at, coalesce(s.arrived_at, 0)) < :fresh_before
  AND NOT EXISTS (SELECT 1 FROM resource_blobs o WHERE o.sha256 = rb.sha256 AND o.resource_num != r.num)
ORDER BY CASE WHEN r.source IN (SELECT value FROM json_each(:expired))
               OR r.channel IN (SELECT value FROM json_each(:never)) THEN 1 ELSE 2 END, score DESC, r.num
"""

QUEUE_SQL = f"""
SELECT r.num, r.id, r.title, r.kind, r.sha256, r.size, r.duration, r.codecs, j.state AS job_state,
       j.attempts, j.error
FROM resources r
JOIN blobs b ON b.sha256 = r.sha256 AND b.state = 'ok'
LEFT JOIN transcode_jobs j ON j.resource_num = r.num
WHERE r.playable = 0 AND r.kind IN ('video', 'audio') AND r.withdrawn_at IS NULL
  AND r.num NOT IN ({ON_REQUEST_SQL})
  AND NOT (coalesce(j.state, '') = 'failed' AND j.attempts >= :max AND j.src_sha256 = r.sha256)
ORDER BY r.added_at, r.num
"""


# -- catalogue reads ------------------------------------------------------------------------------

def visible_resource(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    """(num, id) of a resource that is not withdrawn."""
    return conn.execute("SELECT num, id FROM resources WHERE id = ? AND withdrawn_at IS NULL",
                        (resource_id,)).fetchone()


def visible_num(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT num FROM resources WHERE id = ? AND withdrawn_at IS NULL", (resource_id,)).fetchone()


def resource_channel(conn: sqlite3.Connection, resource_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT channel FROM resources WHERE id = ?", (resource_id,)).fetchone()


def resource_sha(conn: sqlite3.Connection, num: int) -> sqlite3.Row | None:
    return conn.execute("SELECT sha256 FROM resources WHERE num = ?", (num,)).fetchone()


def catalogue_channels(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT DISTINCT channel FROM resources WHERE channel IS NOT NULL")}


def channel_counts(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Channel → (resources, bytes) over visible resources."""
    return {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT channel, count(*), coalesce(sum(size), 0) FROM resources WHERE channel IS NOT NULL "
        "AND withdrawn_at IS NULL GROUP BY channel")}


def have_blob(conn: sqlite3.Connection, sha256: str) -> bool:
    return conn.execute("SELECT 1 FROM blobs WHERE sha256 = ? AND state = 'ok'", (sha256,)).fetchone() is not None


def blob_in_use(conn: sqlite3.Connection, sha256: str) -> bool:
    return conn.execute("SELECT 1 FROM resource_blobs WHERE sha256 = ? LIMIT 1", (sha256,)).fetchone() is not None


def stored_bytes(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(sum(size), 0) FROM blobs WHERE state = 'ok'").fetchone()[0]


def has_bundles_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bundles'").fetchone() is not None


def bundle_expiries(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """(channel, seq, expires text) of every bundle with a readable manifest, read lazily."""
    return conn.execute(
        "SELECT channel, seq, json_extract(CAST(manifest AS TEXT), '$.expires') FROM bundles "
        "WHERE json_valid(CAST(manifest AS TEXT))")


# -- eviction -------------------------------------------------------------------------------------

def last_played_mark(conn: sqlite3.Connection) -> sqlite3.Row | None:
    return conn.execute("SELECT value FROM storage_meta WHERE name = 'last_played_seq'").fetchone()


def top_usage_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM usage_events").fetchone()[0]


def last_plays_between(conn: sqlite3.Connection, mark: int, top: int, kinds: tuple[str, ...]) -> list[sqlite3.Row]:
    """(resource_id, latest at) of events of ``kinds`` with ``mark < seq <= top``."""
    marks = ",".join("?" * len(kinds))
    return conn.execute(f"SELECT resource_id, max(at) FROM usage_events WHERE seq > ? AND seq <= ? "
                        f"AND resource_id IS NOT NULL AND kind IN ({marks}) GROUP BY resource_id",
                        (mark, top, *kinds)).fetchall()


def upsert_last_played(conn: sqlite3.Connection, rows) -> None:
    conn.executemany("INSERT INTO storage_last_played (resource_id, at) VALUES (?, ?) ON CONFLICT (resource_id) "
                     "DO UPDATE SET at = max(at, excluded.at)", rows)


def set_last_played_mark(conn: sqlite3.Connection, top: int) -> None:
    conn.execute("INSERT INTO storage_meta (name, value) VALUES ('last_played_seq', ?) "
                 "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (top,))


def unreferenced_blobs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(sha256, size) of blobs no resource uses, largest first."""
    return conn.execute("""SELECT b.sha256, b.size FROM blobs b
        WHERE NOT EXISTS (SELECT 1 FROM resource_blobs rb WHERE rb.sha256 = b.sha256)
        ORDER BY b.size DESC, b.sha256""").fetchall()


def evictable_originals(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """(sha256, size, id, num, title) of kept transcode originals of unpinned resources, used by nothing else."""
    return conn.execute("""SELECT rb.sha256, b.size, r.id, r.num, r.title FROM resource_blobs rb
        JOIN resources r ON r.num = rb.resource_num JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
        LEFT JOIN storage_state s ON s.resource_num = r.num
        WHERE rb.role = 'original' AND coalesce(s.pinned, 0) = 0
          AND NOT EXISTS (SELECT 1 FROM resource_blobs o WHERE o.sha256 = rb.sha256 AND o.role != 'original')
        ORDER BY b.size DESC, r.num""").fetchall()


def eviction_candidates(conn: sqlite3.Connection, params: dict) -> sqlite3.Cursor:
    """Main blobs in eviction order (CANDIDATES_SQL); a cursor, so the planner reads only what it takes."""
    return conn.execute(CANDIDATES_SQL, params)


def evicted_without_blob(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Blobs recorded as evicted whose blob row is gone (their file may still be on disk)."""
    return conn.execute("""SELECT DISTINCT s.sha256 FROM storage_state s
            WHERE s.state = 'evicted' AND s.sha256 IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = s.sha256)""").fetchall()


# -- storage state --------------------------------------------------------------------------------

def upsert_pin(conn: sqlite3.Connection, num: int, pinned: bool, now: float) -> None:
    conn.execute("INSERT INTO storage_state (resource_num, pinned, changed_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (resource_num) DO UPDATE SET pinned = excluded.pinned",
                 (num, int(pinned), now))


def upsert_evicted(conn: sqlite3.Connection, num: int, sha256: str, reason: str, now: float) -> None:
    conn.execute("""INSERT INTO storage_state (resource_num, state, sha256, reason, changed_at)
        VALUES (?, 'evicted', ?, ?, ?) ON CONFLICT (resource_num) DO UPDATE SET state = 'evicted',
        sha256 = excluded.sha256, reason = excluded.reason, changed_at = excluded.changed_at""",
                 (num, sha256, reason, now))


def upsert_metadata(conn: sqlite3.Connection, nums: list[int], now: float) -> None:
    conn.executemany("INSERT INTO storage_state (resource_num, state, changed_at) VALUES (?, 'metadata', ?) "
                     "ON CONFLICT (resource_num) DO UPDATE SET state = 'metadata', changed_at = excluded.changed_at",
                     [(n, now) for n in nums])


def is_on_request(conn: sqlite3.Connection, num: int) -> bool:
    return conn.execute(ON_REQUEST_SQL + " AND s.resource_num = ?", (num,)).fetchone() is not None


def on_request_all(conn: sqlite3.Connection) -> set[int]:
    return {r[0] for r in conn.execute(ON_REQUEST_SQL)}


def on_request_among(conn: sqlite3.Connection, among: list[int]) -> set[int]:
    marks = ",".join("?" * len(among))
    return {r[0] for r in conn.execute(ON_REQUEST_SQL + f" AND s.resource_num IN ({marks})", among)}


def back_nums(conn: sqlite3.Connection) -> list[int]:
    """Resources marked evicted/metadata whose main blob is recorded as ok again."""
    return [r[0] for r in conn.execute("""SELECT s.resource_num FROM storage_state s
        WHERE s.state IN ('evicted', 'metadata') AND EXISTS (
            SELECT 1 FROM resource_blobs rb JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
            WHERE rb.resource_num = s.resource_num AND rb.role = 'main')""")]


def set_present(conn: sqlite3.Connection, nums: list[int], now: float) -> None:
    conn.executemany("UPDATE storage_state SET state = 'present', sha256 = NULL, reason = '', "
                     "changed_at = ?, arrived_at = ? WHERE resource_num = ?",
                     [(now, now, n) for n in nums])


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT state, count(*) FROM storage_state GROUP BY state").fetchall())


def pinned_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM storage_state WHERE pinned = 1").fetchone()[0]


def on_request_count(conn: sqlite3.Connection) -> int:
    return conn.execute("""SELECT count(*) FROM storage_state s WHERE s.state IN ('evicted', 'metadata')
        AND NOT EXISTS (SELECT 1 FROM resource_blobs rb JOIN blobs b ON b.sha256 = rb.sha256 AND b.state = 'ok'
                        WHERE rb.resource_num = s.resource_num AND rb.role = 'main')""").fetchone()[0]


def is_evicted(conn: sqlite3.Connection, resource_id: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM storage_state s JOIN resources r ON r.num = s.resource_num "
        "WHERE r.id = ? AND s.state = 'evicted'", (resource_id,)).fetchone() is not None


# -- requests -------------------------------------------------------------------------------------

def insert_request(conn: sqlite3.Connection, num: int, resource_id: str, terminal: str, now: float) -> bool:
    """True when a row was added (the partial unique index ignores a repeat from the same terminal)."""
    return conn.execute("INSERT OR IGNORE INTO storage_requests (resource_num, resource_id, terminal, "
                        "requested_at) VALUES (?, ?, ?, ?)", (num, resource_id, terminal, now)).rowcount == 1


def open_request_count(conn: sqlite3.Connection, num: int) -> int:
    return conn.execute("SELECT count(*) FROM storage_requests WHERE resource_num = ? AND state = 'open'",
                        (num,)).fetchone()[0]


def request_listing(conn: sqlite3.Connection, include_fulfilled: bool, limit: int) -> list[sqlite3.Row]:
    where = "" if include_fulfilled else "WHERE q.state = 'open'"
    return conn.execute(f"""
        SELECT q.resource_id, r.title, r.channel, r.size, q.state, count(*) AS requests,
               min(q.requested_at) AS first_at, max(q.requested_at) AS last_at, max(q.fulfilled_at) AS fulfilled_at
        FROM storage_requests q JOIN resources r ON r.num = q.resource_num {where}
        GROUP BY q.resource_num, q.state ORDER BY q.state = 'fulfilled', requests DESC, last_at DESC LIMIT ?""",
                        (limit,)).fetchall()


def open_request_ids(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT resource_id FROM storage_requests WHERE state = 'open' ORDER BY resource_id")]


def has_open_request(conn: sqlite3.Connection, resource_id: str) -> bool:
    return conn.execute(
        "SELECT 1 FROM storage_requests WHERE resource_id = ? AND state = 'open' LIMIT 1",
        (resource_id,)).fetchone() is not None


def fulfil_requests(conn: sqlite3.Connection, num: int, now: float) -> int:
    """Mark a resource's open requests fulfilled; returns how many."""
    return conn.execute("UPDATE storage_requests SET state = 'fulfilled', fulfilled_at = ? "
                        "WHERE resource_num = ? AND state = 'open'", (now, num)).rowcount


# -- subscriptions --------------------------------------------------------------------------------

def subscription_mode(conn: sqlite3.Connection, channel: str) -> sqlite3.Row | None:
    return conn.execute("SELECT mode FROM storage_subscriptions WHERE channel = ?", (channel,)).fetchone()


def upsert_subscription(conn: sqlite3.Connection, channel: str, mode: str, now: float) -> None:
    conn.execute("INSERT INTO storage_subscriptions (channel, mode, updated_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (channel) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at",
                 (channel, mode, now))


def delete_subscription(conn: sqlite3.Connection, channel: str) -> bool:
    return conn.execute("DELETE FROM storage_subscriptions WHERE channel = ?", (channel,)).rowcount > 0


def subscribed_channels(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT channel FROM storage_subscriptions")}


def subscription_overrides(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT channel, mode FROM storage_subscriptions").fetchall())


# -- transcode jobs -------------------------------------------------------------------------------

def transcode_queue(conn: sqlite3.Connection, max_attempts: int) -> sqlite3.Cursor:
    return conn.execute(QUEUE_SQL, {"max": max_attempts})


def recent_jobs(conn: sqlite3.Connection) -> sqlite3.Cursor:
    return conn.execute("""SELECT j.*, r.id AS resource_id, r.title FROM transcode_jobs j
        JOIN resources r ON r.num = j.resource_num ORDER BY j.started_at DESC LIMIT 100""")


def fail_running_jobs(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE transcode_jobs SET state = 'failed', pid = NULL, "
                 "error = 'interrupted (the worker stopped); restarting from the beginning' "
                 "WHERE state = 'running'")


def start_job(conn: sqlite3.Connection, num: int, sha256: str, pid: int, now: float) -> None:
    conn.execute("""INSERT INTO transcode_jobs (resource_num, src_sha256, state, attempts, pid, started_at)
        VALUES (:num, :sha, 'running', 1, :pid, :now) ON CONFLICT (resource_num) DO UPDATE SET
          attempts = CASE WHEN transcode_jobs.src_sha256 = excluded.src_sha256 AND transcode_jobs.state != 'done'
                          THEN transcode_jobs.attempts + 1 ELSE 1 END,
          src_sha256 = excluded.src_sha256, state = 'running', pid = excluded.pid, error = '',
          out_sha256 = NULL, started_at = excluded.started_at, finished_at = NULL, seconds = NULL""",
                 {"num": num, "sha": sha256, "pid": pid, "now": now})


def fail_job(conn: sqlite3.Connection, num: int, message: str, now: float) -> None:
    conn.execute("UPDATE transcode_jobs SET state = 'failed', pid = NULL, error = ?, finished_at = ? "
                 "WHERE resource_num = ?", (message, now, num))


def delete_job(conn: sqlite3.Connection, num: int) -> None:
    conn.execute("DELETE FROM transcode_jobs WHERE resource_num = ?", (num,))


def finish_job(conn: sqlite3.Connection, num: int, out_sha256: str, now: float, seconds: float) -> None:
    conn.execute("UPDATE transcode_jobs SET state = 'done', pid = NULL, out_sha256 = ?, error = '', "
                 "finished_at = ?, seconds = ? WHERE resource_num = ?", (out_sha256, now, seconds, num))
