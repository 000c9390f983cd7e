"""Tally SQL: votes (``hub_votes``), requests and feedback (``hub_requests``) and the
campaigns defined here (``hub_campaigns``), as functions that take the connection first.

The inserts run inside the batch's transaction, opened by
:func:`edgenode.hub.ingest.ingest_batch` and joined by :func:`edgenode.hub.tally.ingest`.
A campaign's ``window`` below is its ``(start_at, end_at)``, or None when the county has
not defined it here (then every vote counts).
"""

from __future__ import annotations

import sqlite3

# -- writes ----------------------------------------------------------------------------------------


def insert_votes(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows ``(node_id, seq, campaign, item, terminal, at, day)``."""
    # OR IGNORE on (node_id, seq): a replayed event is harmless even past the batch row's guard.
    db.executemany("INSERT OR IGNORE INTO hub_votes (node_id, seq, campaign, item, terminal, at, day) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def insert_requests(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Rows ``(node_id, seq, kind, resource_id, text, rating, at, day)``."""
    db.executemany("INSERT OR IGNORE INTO hub_requests (node_id, seq, kind, resource_id, text, rating, at, "
                   "day) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def replace_campaign(db: sqlite3.Connection, campaign_id: str, title: str, start_at: float, end_at: float,
                     items_json: str) -> None:
    db.execute("INSERT OR REPLACE INTO hub_campaigns (id, title, start_at, end_at, items) VALUES (?, ?, ?, ?, ?)",
               (campaign_id, title, start_at, end_at, items_json))


# -- campaigns and votes ---------------------------------------------------------------------------


def campaign_window(db: sqlite3.Connection, campaign: str) -> tuple[float, float] | None:
    row = db.execute("SELECT start_at, end_at FROM hub_campaigns WHERE id = ?", (campaign,)).fetchone()
    return None if row is None else (row["start_at"], row["end_at"])


def campaign_titles(db: sqlite3.Connection, campaign: str) -> sqlite3.Row | None:
    """(title, items) of a defined campaign; ``items`` is the JSON ``{item: title}``."""
    return db.execute("SELECT title, items FROM hub_campaigns WHERE id = ?", (campaign,)).fetchone()


def campaign_list(db: sqlite3.Connection) -> list[dict]:
    """Every campaign with votes or a definition: id, title, votes, nodes; by id."""
    rows = db.execute("""SELECT c.id, coalesce(d.title, c.id) AS title, c.votes, c.nodes FROM
                         (SELECT campaign AS id, count(*) AS votes, count(DISTINCT node_id) AS nodes
                          FROM hub_votes GROUP BY campaign) c LEFT JOIN hub_campaigns d ON d.id = c.id
                         UNION ALL SELECT d.id, d.title, 0, 0 FROM hub_campaigns d
                         WHERE d.id NOT IN (SELECT DISTINCT campaign FROM hub_votes)
                         ORDER BY 1""").fetchall()
    return [dict(r) for r in rows]


def _within(window: tuple[float, float] | None, col: str) -> tuple[str, tuple]:
    if window is None:
        return "", ()
    return f" AND {col} BETWEEN ? AND ?", window


def votes_per_item(db: sqlite3.Connection, campaign: str, window: tuple[float, float] | None) -> list[sqlite3.Row]:
    """(item, votes) inside the window, most votes first."""
    where, args = _within(window, "at")
    return db.execute(f"SELECT item, count(*) AS votes FROM hub_votes WHERE campaign = ?{where} "
                      "GROUP BY item ORDER BY votes DESC, item", (campaign, *args)).fetchall()


def votes_per_node_and_item(db: sqlite3.Connection, campaign: str,
                            window: tuple[float, float] | None) -> list[dict]:
    """(node_id, name, township, item, votes) inside the window, by node, most votes first."""
    where, args = _within(window, "v.at")
    return [dict(r) for r in db.execute(
        f"""SELECT v.node_id, coalesce(n.name, '') AS name, coalesce(n.township, '') AS township, v.item,
            count(*) AS votes FROM hub_votes v LEFT JOIN hub_nodes n ON n.node_id = v.node_id
            WHERE v.campaign = ?{where} GROUP BY v.node_id, v.item
            ORDER BY v.node_id, votes DESC""", (campaign, *args))]


def votes_outside(db: sqlite3.Connection, campaign: str, window: tuple[float, float]) -> int:
    where, args = _within(window, "at")
    return db.execute(f"SELECT count(*) FROM hub_votes WHERE campaign = ? AND NOT (1 = 1{where})",
                      (campaign, *args)).fetchone()[0]


# -- requests and feedback -------------------------------------------------------------------------


def requests(db: sqlite3.Connection, *, node_id: str | None, kind: str | None, keyword: str | None,
             limit: int) -> list[dict]:
    """Requests and feedback, newest first, of one node and kind, with ``keyword`` in the text or resource id."""
    sql = ("SELECT q.*, coalesce(n.name, '') AS node_name, coalesce(n.township, '') AS township FROM hub_requests q "
           "LEFT JOIN hub_nodes n ON n.node_id = q.node_id WHERE 1 = 1")
    args: list = []
    if node_id:
        sql += " AND q.node_id = ?"
        args.append(node_id)
    if kind:
        sql += " AND q.kind = ?"
        args.append(kind)
    if keyword:
        # LIKE, not FTS: two-character Chinese words (水稻, 戏曲) are the common case (see lessons).
        sql += " AND (q.text LIKE ? ESCAPE '\\' OR q.resource_id LIKE ? ESCAPE '\\')"
        pat = "%" + keyword[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"  # cut, then escape
        args += [pat, pat]
    sql += " ORDER BY q.at DESC LIMIT ?"
    return [dict(r) for r in db.execute(sql, (*args, limit))]


def request_summary(db: sqlite3.Connection, limit: int) -> list[dict]:
    """Per node: how many requests and feedback, and the average rating; busiest first."""
    return [dict(r) for r in db.execute(
        """SELECT q.node_id, coalesce(n.name, '') AS node_name, sum(q.kind = 'request') AS requests,
           sum(q.kind = 'feedback') AS feedback, round(avg(q.rating), 2) AS avg_rating, max(q.at) AS last_at
           FROM hub_requests q LEFT JOIN hub_nodes n ON n.node_id = q.node_id
           GROUP BY q.node_id ORDER BY requests + feedback DESC LIMIT ?""", (limit,))]
