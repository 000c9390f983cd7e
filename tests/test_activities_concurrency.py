"""Capacity is never oversold: 50 terminals book at once, through real gunicorn workers
(separate processes, one SQLite file), for 20 seats."""

from __future__ import annotations

import threading

import requests

from edgenode.core.db import open_main
from tests.helpers_activities import ERROR_RE, PHONES, activity, csrf, gunicorn_app

N, SEATS = 50, 20


def _terminal(base: str, aid: str, i: int, barrier: threading.Barrier, out: list) -> None:
    s = requests.Session()  # its own cookies: its own terminal, session and CSRF token
    page = s.get(f"{base}/activities/{aid}", timeout=30)
    token = csrf(page.text)
    barrier.wait(timeout=60)
    r = s.post(f"{base}/activities/{aid}/book", data={"csrf_token": token, "name": f"村民{i}", "phone": PHONES[i],
                                                      "seats": "1"}, allow_redirects=False, timeout=60)
    out[i] = (r.status_code, r.headers.get("Location"), r.text)


def test_fifty_concurrent_bookings_for_twenty_seats(cfg):
    conn = open_main(cfg, check=True)
    a = activity(conn, capacity=SEATS, audit=False)
    with gunicorn_app(cfg, workers=3, threads=8) as base:
        out: list = [None] * N
        barrier = threading.Barrier(N)
        threads = [threading.Thread(target=_terminal, args=(base, a["id"], i, barrier, out)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    booked = [o for o in out if o and o[0] == 303]
    full = [o for o in out if o and o[0] == 409]
    assert len(booked) == SEATS, [o[:2] for o in out if o and o[0] not in (303, 409)]
    assert len(full) == N - SEATS
    for status, _loc, html in full:
        msg = ERROR_RE.search(html).group(1)
        assert msg.startswith("已满"), msg
    assert all(loc.startswith("/activities/booking/") for _s, loc, _h in booked)
    rows = conn.execute("SELECT status, seats, code_hash FROM act_bookings WHERE activity_id = ?",
                        (a["id"],)).fetchall()
    assert len(rows) == SEATS and sum(r["seats"] for r in rows) == SEATS
    assert {r["status"] for r in rows} == {"approved"}  # no audit step: 已审核 at once
    assert len({r["code_hash"] for r in rows}) == SEATS
    # The upstream events count the same 20 bookings, and nothing else.
    n = conn.execute("SELECT count(*) FROM usage_events WHERE kind = 'booking'").fetchone()[0]
    assert n == SEATS
    conn.close()
