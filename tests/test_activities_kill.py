"""A power cut at any point loses nothing committed: SIGKILL a process that books and votes in
a loop, then check that every acknowledged booking and vote is there, each with its upstream
event (same transaction), and that no seat was sold twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from tests.helpers_activities import activity, campaign
from tests.helpers_sync import ROOT

CHILD = """
import sys, time
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.node.activities import queries as aq
from edgenode.node.campaigns import queries as cq
from edgenode.core.errors import EdgenodeError
cfg = load_config(env={}, overrides={"data_dir": sys.argv[1], "activities.terminal_daily_bookings": 10 ** 6})
conn = open_main(cfg)
start = int(sys.argv[3])
for i in range(start, start + 100000):
    try:
        b = aq.book(conn, cfg, sys.argv[2], {"name": "王", "phone": f"139{i:08d}", "seats": 1}, terminal=f"k{i}")
        print("B", b["order_id"], flush=True)
    except EdgenodeError as e:
        print("F", e.code, flush=True)
    cq.vote(conn, "qunwen-2026", "12", terminal=f"k{i}")
    print("V", i, flush=True)
"""


def test_sigkill_while_booking_and_voting_loses_nothing(cfg, conn):
    a = activity(conn, capacity=60)
    campaign(conn, cfg)
    acked_bookings, acked_votes = set(), 0
    rnd = random.Random(7)
    for round_ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(cfg.data_path), a["id"], str(round_ * 10000)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        first = proc.stdout.readline()  # started (imports can take long on a loaded machine)
        time.sleep(rnd.random() * 0.5)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        out = first + out
        for line in out.splitlines():
            if line.startswith("B "):
                acked_bookings.add(line.split()[1])
            elif line.startswith("V "):
                acked_votes += 1
    assert acked_bookings and acked_votes
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r[0] for r in conn.execute("SELECT order_id FROM act_bookings")}
    assert acked_bookings <= stored  # at most the one in flight is extra (committed, not yet printed)
    assert len(stored - acked_bookings) <= 6
    seats = conn.execute("SELECT sum(seats) FROM act_bookings WHERE status != 'cancelled'").fetchone()[0]
    assert seats <= 60
    events = conn.execute("SELECT count(*) FROM usage_events WHERE kind = 'booking'").fetchone()[0]
    assert events == len(stored)  # a booking and its upstream event commit together
    votes = conn.execute("SELECT count(*) FROM camp_votes").fetchone()[0]
    vote_events = [json.loads(r[0]) for r in conn.execute("SELECT data FROM usage_events WHERE kind = 'vote'")]
    assert len(vote_events) == votes and acked_votes <= votes <= acked_votes + 6
