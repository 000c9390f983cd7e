"""Usage uplink and content re-sync (issue 6), against baselines measured in the same run.

1. **Uplink of 1,000,000 usage events** to the real hub (``edgenode hub serve``: gunicorn,
   2 workers, on loopback): seal (gzip JSON Lines, signed, fsynced) then POST every batch
   and delete on ack.  Figures: wall time (target <= 10 s), bytes per event on the wire
   (target <= 20), hub ingest events/s (seen by the node, and the hub's ``ingest_batch``
   alone on the same batches).  Baseline: the obvious encoding -- ``json.dumps`` of each
   full event row, gzip level 6 -- for time and bytes.
2. **Unchanged re-sync of a 1 GB channel** from a real rsync daemon on loopback with the
   node's rsync options.  Baseline: the first, full pull of the same channel.

    .venv/bin/python bench/bench_uplink.py [--events 1000000] [--channel-mb 1024] [--dir /var/tmp]

Results: bench/out/uplink.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgenode.core.db import open_main, transaction  # noqa: E402
from edgenode.core.identity import load_or_create  # noqa: E402
from edgenode.node.sync import outbox, uplink
from edgenode.node.sources import pull  # noqa: E402
from tests.conftest import make_config  # noqa: E402
from tests.helpers_sync import TERMINALS, Hub, Rsyncd, enrolled_node  # noqa: E402


def fill_events(conn, n: int) -> None:
    """n realistic events: beacons every 15 s of play, views, searches; 40 terminals, 240 resources."""
    rnd = random.Random(1)
    kinds = ["view", "play_start", "progress", "play_end", "search", "download"]
    weights = [20, 8, 60, 8, 3, 1]
    t, rows = 1764000000.0, []
    for _ in range(n):
        t += rnd.expovariate(1 / 0.8)
        k = rnd.choices(kinds, weights)[0]
        c = rnd.choice(["sannong", "pushi", "xinchengshi", "shequ"])
        r, data = (None, None) if k == "search" else (f"{c}.res-{rnd.randrange(60):03d}", None)
        if k == "search":
            c, data = None, json.dumps({"q": rnd.choice(["水稻", "养猪", "医保", "广场舞"])}, ensure_ascii=False)
        rows.append((t, 0.0, "bench", rnd.choice(TERMINALS), k, r, c, 15.0 if k == "progress" else 0.0, data))
    with transaction(conn):
        conn.executemany("INSERT INTO usage_events (at, mono, boot_id, terminal, kind, resource_id, column_key, "
                         "seconds, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def baseline_encoding(conn) -> dict:
    t0 = time.perf_counter()
    rows = conn.execute("SELECT * FROM usage_events ORDER BY seq").fetchall()
    text = "\n".join(json.dumps(dict(r), ensure_ascii=False) for r in rows).encode()
    data = gzip.compress(text, 6)
    return {"seconds": time.perf_counter() - t0, "bytes_per_event": len(data) / len(rows),
            "plain_bytes_per_event": len(text) / len(rows)}


def bench_uplink(tmp: Path, n: int) -> dict:
    hub = Hub(tmp / "hub").start()
    try:
        cfg = enrolled_node(tmp, hub)
        conn = open_main(cfg)
        t0 = time.perf_counter()
        fill_events(conn, n)
        print(f"  {n} events recorded in {time.perf_counter() - t0:.1f} s (setup, not timed)", flush=True)
        base = baseline_encoding(conn)
        ident = load_or_create(cfg)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # seal alone, on a copy of the node: the seal time, the batch bytes, and batches for the ingest-only run
        copy = make_config(tmp / "node-copy")
        shutil.copytree(cfg.data_path, copy.data_path)
        cconn = open_main(copy)
        t0 = time.perf_counter()
        uplink.seal(copy, cconn, ident)
        t_seal = time.perf_counter() - t0
        cconn.close()
        files = outbox.batch_files(copy)
        body = sum(p.stat().st_size for _, p in files)
        kept = [(no, p.read_bytes(), outbox.sig_path(p).read_text()) for no, p in files]
        # the measured run: what the scheduler does (seal and send overlapped, delete on ack)
        hub_procs = [psutil.Process(hub.proc.pid), *psutil.Process(hub.proc.pid).children(recursive=True)]
        hub_cpu0 = sum(sum(p.cpu_times()[:2]) for p in hub_procs)
        node_cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        t1 = time.perf_counter()
        result = uplink.run(cfg, conn, hub.url)
        wall = time.perf_counter() - t1
        node_cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - node_cpu0
        hub_cpu = sum(sum(p.cpu_times()[:2]) for p in hub_procs) - hub_cpu0
        totals = hub.totals(ident.node_id)
        assert totals["events"] == n == result["sealed_events"], (totals, result)
        # HTTP overhead per request, measured on a real prepared request and a real answer
        import requests
        from edgenode.node.sync import client
        req = requests.Request("POST", hub.url + "/api/v1/batches", data=b"", headers={
            "User-Agent": client.USER_AGENT, "Content-Type": "application/octet-stream",
            "X-Edgenode-Batch-No": "1", "X-Edgenode-Batch-Signature": kept[0][2],
            **client.signed_headers(ident, "POST", "/api/v1/batches", b"")}).prepare()
        req_head = len(f"POST /api/v1/batches HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\n") + sum(
            len(k) + len(v) + 4 for k, v in req.headers.items()) + 60  # + Content-Length, Accept*, Connection
        resp = requests.post(hub.url + "/api/v1/batches", data=kept[0][1], timeout=60, headers={
            "Content-Type": "application/octet-stream", "X-Edgenode-Batch-No": str(kept[0][0]),
            "X-Edgenode-Batch-Signature": kept[0][2],
            **client.signed_headers(ident, "POST", "/api/v1/batches", kept[0][1])})
        resp_bytes = len(resp.content) + sum(len(k) + len(v) + 4 for k, v in resp.headers.items()) + 20
        wire = body + len(kept) * (req_head + resp_bytes)
        conn.close()
    finally:
        hub.stop()
    # the hub's ingest alone, in-process, on the same batches (a fresh hub database)
    from edgenode.hub.database import open_hub
    from edgenode.hub.ingest import ingest_batch
    from edgenode.hub.registry import enroll, new_code
    hcfg = make_config(tmp / "hub-inproc")
    hconn = open_hub(hcfg)
    node = enroll(hconn, code=new_code(hconn), node_id=ident.node_id, public_key=ident.public_b64())
    t2 = time.perf_counter()
    for no, data, sig in kept:
        ingest_batch(hconn, node, no, data, sig)
    t_ingest = time.perf_counter() - t2
    hconn.close()
    return {"events": n, "batches": len(kept), "seal_s": t_seal, "wall_s": wall, "node_cpu_s": node_cpu,
            "hub_cpu_s": hub_cpu,
            "batch_bytes_per_event": body / n, "wire_bytes_per_event": wire / n,
            "end_to_end_events_per_s": n / wall, "hub_ingest_only_events_per_s": n / t_ingest,
            "baseline": base}


def bench_resync(tmp: Path, mb: int) -> dict:
    root = tmp / "rsync"
    chan = root / "channels" / "big"
    chan.mkdir(parents=True)
    per = 16
    rnd = random.Random(2)
    for i in range(max(1, mb // per)):
        with open(chan / f"f{i:04d}.bin", "wb") as f:
            for _ in range(per):
                f.write(rnd.randbytes(1 << 20))
    total = sum(p.stat().st_size for p in chan.iterdir())
    d = Rsyncd(root, tmp / "rsyncd").start()
    try:
        cfg = make_config(tmp / "node", sync__rsync_url=d.url)
        open_main(cfg).close()
        t0 = time.perf_counter()
        first = pull.rsync_channel(cfg, "big")
        t_first = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = pull.rsync_channel(cfg, "big")
        t_again = time.perf_counter() - t1
    finally:
        d.stop()
    assert first.state == again.state == "done"
    return {"channel_bytes": total, "first_pull_bytes": first.wire_bytes, "first_pull_s": t_first,
            "resync_bytes": again.wire_bytes, "resync_s": t_again, "resync_stats": again.stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--channel-mb", type=int, default=1024)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-uplink-", dir=args.dir))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.1f} on {os.cpu_count()} CPUs (other work on this machine slows "
          f"every figure; the ratios against the same-run baselines are the comparable ones)")
    try:
        print(f"uplink of {args.events} events to the real hub ...", flush=True)
        u = bench_uplink(tmp / "u", args.events)
        b = u["baseline"]
        print(f"  sealed and pushed {u['batches']} batches: wall {u['wall_s']:.2f} s (target <= 10 s); "
              f"sealing alone takes {u['seal_s']:.2f} s")
        print(f"  CPU time spent: node {u['node_cpu_s']:.2f} s, hub {u['hub_cpu_s']:.2f} s (CPU time is less "
              f"affected by other load than wall time)")
        print(f"  baseline encoding (json.dumps of full rows + gzip 6): {b['seconds']:.2f} s -> "
              f"seal is {b['seconds'] / u['seal_s']:.2f}x the baseline's speed")
        print(f"  bytes per event: batch {u['batch_bytes_per_event']:.2f}, on the wire incl. HTTP "
              f"{u['wire_bytes_per_event']:.2f} (target <= 20); baseline {b['bytes_per_event']:.2f} gzip, "
              f"{b['plain_bytes_per_event']:.1f} plain -> {b['bytes_per_event'] / u['wire_bytes_per_event']:.2f}x "
              f"smaller than the baseline")
        print(f"  hub ingest: {u['end_to_end_events_per_s']:,.0f} events/s end to end; "
              f"{u['hub_ingest_only_events_per_s']:,.0f} events/s for ingest_batch alone")
        print(f"unchanged re-sync of a {args.channel_mb} MB channel ...", flush=True)
        r = bench_resync(tmp / "r", args.channel_mb)
        print(f"  first pull (baseline): {r['first_pull_bytes']:,} bytes in {r['first_pull_s']:.2f} s")
        print(f"  unchanged re-sync: {r['resync_bytes']:,} bytes in {r['resync_s']:.2f} s = "
              f"{r['resync_bytes'] / r['channel_bytes']:.5%} of the channel, "
              f"{r['first_pull_s'] / r['resync_s']:.0f}x faster than the first pull")
        out = REPO / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "uplink.json").write_text(json.dumps({"uplink": u, "resync": r, "loadavg": [load, os.getloadavg()]},
                                                    indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
