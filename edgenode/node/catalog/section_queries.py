"""The portal's sections in plain words: resources of some columns or some tags (docs/portal.md)."""

from __future__ import annotations

import sqlite3

from edgenode.node.catalog.search import SearchResult


def _where(columns: list[str], tags: list[str], kind: str | None) -> tuple[str, list]:
    either, params = [], []
    if columns:
        either.append(f"r.column_key IN ({','.join('?' * len(columns))})")
        params += columns
    if tags:
        either.append("EXISTS (SELECT 1 FROM resource_tags rt WHERE rt.resource_num = r.num "
                      f"AND rt.tag IN ({','.join('?' * len(tags))}))")
        params += tags
    where = "r.visible = 1 AND (" + (" OR ".join(either) or "0") + ")"
    if kind:
        where += " AND r.kind = ?"
        params.append(kind)
    return where, params


def browse_section(conn: sqlite3.Connection, columns: list[str], tags: list[str], *, kind: str | None = None,
                   page: int = 1, page_size: int = 20) -> SearchResult:
    """Visible resources of any of ``columns`` or with any of ``tags``, newest first."""
    where, params = _where(columns, tags, kind)
    total = conn.execute(f"SELECT count(*) FROM resources r WHERE {where}", params).fetchone()[0]
    page = max(1, page)
    rows = conn.execute(f"SELECT r.* FROM resources r WHERE {where} ORDER BY r.added_at DESC, r.num DESC "
                        "LIMIT ? OFFSET ?", (*params, page_size, (page - 1) * page_size)).fetchall()
    return SearchResult(total, [dict(r) for r in rows], page, page_size)


def section_counts(conn: sqlite3.Connection, sections: list[dict]) -> dict[str, int]:
    counts = {}
    for s in sections:
        where, params = _where(s.get("columns", []), s.get("tags", []), None)
        counts[s["key"]] = conn.execute(f"SELECT count(*) FROM resources r WHERE {where}", params).fetchone()[0]
    return counts
