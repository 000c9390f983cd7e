"""Requests ("我想看更多关于…") and feedback (rating + comment on a resource).

Both are usage events, so they reach the county through the same sealed
batches as plays and votes, and the hub lists them per node and keyword
(``edgenode/hub/tally.py``):

* ``request``: ``x = {"text": …}``, ``r`` = a resource when the villager asks
  for an item this point no longer holds (the storage area uses the same kind);
* ``feedback``: ``r`` = the resource, ``x = {"rating": 1..5, "comment": …}``.

No personal data: the form asks for none, and text that contains a mobile or
ID-card number is refused rather than stored or sent.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.core.fields import PHONE_IN_TEXT_RE, clean_text, format_time, invalid, parse_int
from edgenode.core.errors import EdgenodeError, NotFound
from edgenode.node.usage import events

KINDS = ("request", "feedback")
MAX_TEXT = 200


def _no_personal(text: str) -> str:
    if PHONE_IN_TEXT_RE.search(text.replace(" ", "").replace("-", "")):
        raise invalid("E_PERSONAL_DATA", "text contains a phone number; none is needed",
                      "请不要填写手机号等个人信息")
    return text


def _resource(conn, rid) -> sqlite3.Row:
    row = conn.execute("SELECT id, column_key, title FROM resources WHERE id = ?", (str(rid)[:128],)).fetchone()
    if row is None:
        raise NotFound(f"no resource {rid!r}", zh="没有找到这个资源")
    return row


def _check_limit(conn, cfg, terminal: str, now: float) -> None:
    n = conn.execute("SELECT count(*) FROM usage_events WHERE at > ? AND terminal = ? AND kind IN (?, ?)",
                     (now - 86400, terminal, *KINDS)).fetchone()[0]
    if n >= cfg["feedback.terminal_daily_limit"]:
        raise EdgenodeError("E_FEEDBACK_LIMIT", "too many requests from this terminal today",
                            zh="今天提交的次数已达上限，谢谢您的意见，请明天再来", status=429)


def submit_request(conn: sqlite3.Connection, cfg, text, *, terminal: str, resource_id: str | None = None,
                   now: float | None = None) -> dict:
    now = time.time() if now is None else now
    text = _no_personal(clean_text(text, "text", "想看的内容", max_len=MAX_TEXT))
    row = _resource(conn, resource_id) if resource_id else None
    _check_limit(conn, cfg, terminal, now)
    x = {"text": text}
    events.record(conn, [{"kind": "request", "terminal": terminal, "at": now, "data": x,
                          "resource_id": row["id"] if row else None, "column_key": row["column_key"] if row else None}])
    return {"kind": "request", "text": text, "resource_id": row["id"] if row else None}


def submit_feedback(conn: sqlite3.Connection, cfg, resource_id, rating, comment="", *, terminal: str,
                    now: float | None = None) -> dict:
    now = time.time() if now is None else now
    row = _resource(conn, resource_id)
    rating = parse_int(rating, "rating", "评分", low=1, high=5)
    comment = _no_personal(clean_text(comment, "comment", "意见", max_len=MAX_TEXT, required=False, multiline=True))
    _check_limit(conn, cfg, terminal, now)
    x = {"rating": rating, **({"comment": comment} if comment else {})}
    events.record(conn, [{"kind": "feedback", "terminal": terminal, "at": now, "data": x, "resource_id": row["id"],
                          "column_key": row["column_key"]}])
    return {"kind": "feedback", "resource_id": row["id"], "title": row["title"], "rating": rating,
            "comment": comment}


def recent(conn: sqlite3.Connection, *, limit: int = 200) -> list[dict]:
    """The newest requests and feedback at this point, for the admin page."""
    rows = conn.execute("""SELECT e.at, e.kind, e.resource_id, e.data, r.title FROM usage_events e
                           LEFT JOIN resources r ON r.id = e.resource_id
                           WHERE e.kind IN (?, ?) ORDER BY e.seq DESC LIMIT ?""", (*KINDS, limit)).fetchall()
    out = []
    for r in rows:
        x = json.loads(r["data"]) if r["data"] else {}
        out.append({"at": r["at"], "time": format_time(r["at"]), "kind": r["kind"], "resource_id": r["resource_id"], "title": r["title"],
                    "text": x.get("text") or x.get("comment") or "", "rating": x.get("rating")})
    return out
