"""Cost of booking, voting and check-in, and of the hub's vote tally at ingest (issue 10).

Each figure is a ratio against a baseline measured in the same run on the same
database file (WAL, synchronous=FULL: every commit waits for the disk):

* booking (validation, flood and duplicate checks, capacity check inside the
  INSERT, HMAC of the code, the upstream event) vs. the cheapest durable write,
  one ``usage.events.record`` of a single event;
* a vote (window, limit, local row + event) vs. the same baseline;
* a check-in by code (HMAC + indexed lookup + update + event) vs. the same baseline;
* booking under contention: W threads booking one activity at once, seats/s vs.
  one thread;
* hub ingest of a batch of N ``vote`` events (aggregates + per-event tally rows)
  vs. a batch of N ``play_start`` events (aggregates only).

    .venv/bin/python bench/bench_activities.py [--n 2000] [--batch 20000] [--workers 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgenode.node.activities import queries as aq  # noqa: E402
from edgenode.node.campaigns import queries as cq  # noqa: E402
from edgenode.core.config import load_config  # noqa: E402
from edgenode.core.db import open_main  # noqa: E402
from edgenode.node.usage import events  # noqa: E402


def phone(i: int) -> str:
    return f"139{i:08d}"


def node_figures(root: Path, n: int, workers: int) -> dict:
    cfg = load_config(env={}, overrides={"data_dir": str(root / "node"), "activities.terminal_daily_bookings": 10 ** 9})
    conn = open_main(cfg)
    now = time.time()
    a = aq.create_activity(conn, {"title": "讲座", "start": now + 86400, "end": now + 90000, "capacity": 100000})
    cq.create_campaign(conn, cfg, {"id": "c", "title": "评选", "start": now - 60, "end": now + 86400, "daily_limit": 2,
                                   "items": [{"id": str(i), "title": f"作品{i}"} for i in range(20)]})
    # Interleaved, one of each per round, medians: the disk's fsync latency drifts (other
    # processes share it), and interleaving exposes every kind of write to the same drift.
    samples: dict = {"base": [], "book": [], "vote": [], "checkin": []}

    def timed(key, fn):
        t = time.perf_counter()
        out = fn()
        samples[key].append(time.perf_counter() - t)
        return out

    for i in range(n):
        timed("base", lambda: events.record(conn, [{"kind": "view", "terminal": f"b{i}"}]))
        b_ = timed("book", lambda: aq.book(conn, cfg, a["id"], {"name": "陈忠", "phone": phone(i), "seats": 1},
                                           terminal=f"t{i}"))
        timed("vote", lambda: cq.vote(conn, "c", str(i % 20), terminal=f"v{i}"))
        timed("checkin", lambda: aq.check_in(conn, cfg, b_["code"]))
    base, book, vote, checkin = (statistics.median(samples[k]) for k in ("base", "book", "vote", "checkin"))

    # Contention: W threads, each with its own connection, booking the same activity.
    b = aq.create_activity(conn, {"title": "放映", "start": now + 86400, "end": now + 90000, "capacity": 100000})
    per_thread = max(n // workers, 1)
    barrier = threading.Barrier(workers)

    def worker(w):
        own = open_main(cfg)
        barrier.wait()
        for i in range(per_thread):
            aq.book(own, cfg, b["id"], {"name": "王", "phone": phone(10 ** 7 + w * per_thread + i), "seats": 1},
                    terminal=f"w{w}-{i}")
        own.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    contended = (time.perf_counter() - t) / (per_thread * workers)
    sold = aq.get_activity(conn, b["id"])["booked"]
    conn.close()
    return {"base": base, "book": book, "vote": vote, "checkin": checkin, "contended": contended,
            "contended_sold": sold, "contended_expected": per_thread * workers}


def hub_figures(root: Path, batch: int, repeat: int = 5) -> dict:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgenode.hub import registry
    from edgenode.hub.database import open_hub
    from edgenode.hub.ingest import ingest_batch
    from edgenode.core.identity import Identity
    from edgenode.protocol.usage_batch import seal_bytes, sign_batch

    cfg = load_config(env={}, overrides={"data_dir": str(root / "hub")})
    conn = open_hub(cfg)
    times: dict = {"plays": [], "votes": []}
    no = 0
    for r in range(repeat):
        for kind in ("plays", "votes"):
            ident = Identity(f"{r:02d}{kind[:1]}".ljust(32, "0").replace("p", "a").replace("v", "b"),
                             Ed25519PrivateKey.generate())
            registry.enroll(conn, code=registry.new_code(conn), node_id=ident.node_id,
                            public_key=ident.public_b64(), name="bench")
            lines = []
            for i in range(batch):
                x = {"campaign": "c", "item": str(i % 20)} if kind == "votes" else None
                lines.append({"s": i + 1, "t": 1764000000.0 + i, "k": "vote" if kind == "votes" else "play_start",
                              "m": f"t{i % 500}", "r": None if kind == "votes" else f"r{i % 300}",
                              "c": None if kind == "votes" else "sannong", "d": 0.0, "x": x})
            no += 1
            data = seal_bytes(ident.node_id, 1, lines, first_seq=1, last_seq=batch, sealed_at=1764000000.0)
            sig = sign_batch(ident, 1, data)
            node = dict(conn.execute("SELECT * FROM hub_nodes WHERE node_id = ?", (ident.node_id,)).fetchone())
            t = time.perf_counter()
            ingest_batch(conn, node, 1, data, sig)
            times[kind].append(time.perf_counter() - t)
    total = conn.execute("SELECT count(*) FROM hub_votes").fetchone()[0]
    conn.close()
    return {"plays": statistics.median(times["plays"]), "votes": statistics.median(times["votes"]),
            "tally_rows": total, "tally_expected": batch * repeat}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        f = node_figures(root, args.n, args.workers)
        h = hub_figures(root, args.batch)
    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    print(f"node, {args.n} rounds, medians (baseline: one durable usage event = {ms(f['base'])})")
    for k, label in (("book", "booking"), ("vote", "vote"), ("checkin", "check-in by code")):
        print(f"  {label:<18} {ms(f[k]):>10}  {f[k] / f['base']:.2f}x baseline  ({1 / f[k]:.0f}/s)")
    print(f"  booking, {args.workers} threads contending: {ms(f['contended'])} per booking, "
          f"{f['contended'] / f['book']:.2f}x one thread; sold {f['contended_sold']} of {f['contended_expected']}")
    print(f"hub ingest of a {args.batch}-event batch (median of 5; baseline: play_start events = {ms(h['plays'])})")
    print(f"  vote events         {ms(h['votes']):>10}  {h['votes'] / h['plays']:.2f}x baseline  "
          f"({args.batch / h['votes']:.0f} votes/s; {h['tally_rows']} tally rows, expected {h['tally_expected']})")


if __name__ == "__main__":
    main()
