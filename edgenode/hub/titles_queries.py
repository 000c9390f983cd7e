"""Resource titles SQL (``hub_titles``): written with each batch that names resources (the
node's catalogue titles, in the batch header) and with each bundle this hub publishes; read by
the reports, which name resources by title, never by id.
"""

from __future__ import annotations

import sqlite3


def set_titles(db: sqlite3.Connection, titles: dict[str, str], at: float) -> None:
    """Upsert ``{resource id: title}``; the caller holds the transaction."""
    db.executemany("INSERT INTO hub_titles (resource_id, title, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at "
                   "WHERE excluded.title <> hub_titles.title", [(k, v, at) for k, v in titles.items()])


def titles(db: sqlite3.Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in db.execute("SELECT resource_id, title FROM hub_titles")}
