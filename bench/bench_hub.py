"""Hub ingest and statistics, in one process (no HTTP): what the hub code itself costs.

Each figure is printed with a baseline measured in the same run:

* batch ingest (verify, parse, aggregate, one FULL-sync transaction) against just
  decompressing and ``json.loads``-ing the same lines;
* heartbeat (verify the signed request, two inserts) against a bare Ed25519 verify;
* monthly statistics over a county-sized ``hub_daily`` against ``count(*)`` of it.

The HTTP figures (gunicorn, 2,000 nodes) come from ``bench/fleet_sim.py``.

    .venv/bin/python bench/bench_hub.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--per-batch", type=int, default=1000)
    ap.add_argument("--heartbeats", type=int, default=3000)
    ap.add_argument("--stat-nodes", type=int, default=500)
    args = ap.parse_args(argv)

    from edgenode.core.config import load_config
    from edgenode.core.db import transaction
    from edgenode.hub import heartbeat, registry, reports, stats
    from edgenode.hub.database import open_hub
    from edgenode.hub.ingest import ingest_batch
    from edgenode.hub.signing import sign_headers, verify_request
    from tests.helpers_hub import make_events, new_identity, seal, snapshot

    cfg = load_config(env={}, overrides={"data_dir": tempfile.mkdtemp(prefix="bench-hub-")})
    conn = open_hub(cfg)
    out = {}

    # -- batches ---------------------------------------------------------------------------------
    nodes = []
    for i in range(20):
        ident = new_identity()
        registry.enroll(conn, code=registry.new_code(conn, township=f"镇{i % 4}"), node_id=ident.node_id,
                        public_key=ident.public_b64(), name=f"村{i}")
        nodes.append((ident, registry.get_node(conn, ident.node_id)))
    n_batches = args.events // args.per_batch
    t = time.perf_counter()
    sealed = []
    for b in range(n_batches):
        ident, node = nodes[b % len(nodes)]
        no = b // len(nodes) + 1
        evs = make_events(args.per_batch, first_seq=1 + no * args.per_batch, seed=b, terminals=40,
                          start=1764000000.0 + no * 3600)
        sealed.append((node, no, *seal(ident, no, evs)))
    seal_s = time.perf_counter() - t
    wire = sum(len(d) for _, _, d, _ in sealed)

    t = time.perf_counter()
    for _, _, data, _ in sealed:
        [json.loads(line) for line in gzip.decompress(data).decode().splitlines()]
    parse_s = time.perf_counter() - t

    t = time.perf_counter()
    for node, no, data, sig in sealed:
        assert ingest_batch(conn, node, no, data, sig)["status"] == "stored"
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    for node, no, data, sig in sealed[:200]:
        assert ingest_batch(conn, node, no, data, sig)["status"] == "duplicate"
    dup_s = (time.perf_counter() - t) / min(200, len(sealed))
    n = n_batches * args.per_batch
    assert stats.totals(conn)["events"] == n
    out["batches"] = {"events": n, "batches": n_batches, "seal_s": seal_s, "bytes_per_event": wire / n,
                      "baseline_parse_events_per_s": n / parse_s, "ingest_events_per_s": n / ingest_s,
                      "ratio": parse_s / ingest_s, "duplicate_ms": dup_s * 1000}

    # -- heartbeats ------------------------------------------------------------------------------
    ident, node = nodes[0]
    body = json.dumps(snapshot(ident)).encode()
    reqs = [sign_headers(ident, "POST", "/api/v1/heartbeat", body, int(time.time()) + i) for i in range(args.heartbeats)]
    from edgenode.hub.registry import key_object
    from edgenode.hub.signing import request_message
    import base64
    key = key_object(node["public_key"])
    t = time.perf_counter()
    for h in reqs:
        key.verify(base64.b64decode(h["X-Edgenode-Signature"]),
                   request_message("POST", "/api/v1/heartbeat", h["X-Edgenode-Timestamp"], body))
    verify_s = time.perf_counter() - t
    from edgenode.core.db import connect
    hb_conn = connect(cfg.data_path / "hub.db", synchronous="NORMAL")
    t = time.perf_counter()
    for h in reqs:
        nrow, ts = verify_request(conn, "POST", "/api/v1/heartbeat", h, body)
        heartbeat.record(hb_conn, nrow, body, signed_ts=ts)
    hb_s = time.perf_counter() - t
    out["heartbeats"] = {"n": args.heartbeats, "baseline_verify_per_s": args.heartbeats / verify_s,
                         "heartbeats_per_s": args.heartbeats / hb_s, "ratio": verify_s / hb_s}

    # -- statistics over a county-sized month -----------------------------------------------------
    rnd = random.Random(1)
    cols = ["sannong", "pushi", "xinchengshi", "shequ"]
    ids = []
    with transaction(conn):
        for i in range(args.stat_nodes):
            nid = f"{i:032x}"
            ids.append(nid)
            conn.execute("INSERT INTO hub_nodes (node_id, public_key, name, township, enrolled_at) VALUES (?, ?, ?, ?, 0)",
                         (nid, node["public_key"], f"统计村{i}", f"镇{i % 15}"))
            monthly: dict = {}
            daily: dict = {}
            for day in range(1, 31):
                for c in cols:
                    for r in range(40):  # 40 resources per column watched in a month
                        for k in ("view", "play_start", "progress"):
                            n, secs = rnd.randrange(1, 20), rnd.random() * 600
                            d = daily.setdefault((f"2026-09-{day:02d}", c, k), [0, 0.0])
                            d[0] += n
                            d[1] += secs
                            m = monthly.setdefault((c, f"{c}.r{r}", k), [0, 0.0])
                            m[0] += n
                            m[1] += secs
            conn.executemany("INSERT INTO hub_daily VALUES (?, ?, ?, ?, ?, ?, 0, 0.0)",
                             [(nid, *k, *v) for k, v in daily.items()])
            conn.executemany("INSERT INTO hub_monthly VALUES (?, '2026-09', ?, ?, ?, ?, ?)",
                             [(nid, *k, *v) for k, v in monthly.items()])
        conn.executemany("INSERT OR IGNORE INTO hub_terminals VALUES (?, ?, ?, ?, ?)",
                         [(nid, "2026-09", c, f"{c}.r{r}", f"t{rnd.randrange(60)}")
                          for nid in ids for c in cols for r in range(40) for _ in range(3)])
        synthetic = "SELECT node_id FROM hub_nodes WHERE name LIKE '统计村%'"
        conn.execute("INSERT INTO hub_monthly_col SELECT month, node_id, column_key, kind, sum(n), sum(seconds) "
                     f"FROM hub_monthly WHERE node_id IN ({synthetic}) GROUP BY 1, 2, 3, 4")
        conn.execute("INSERT OR IGNORE INTO hub_terminals_col SELECT month, node_id, column_key, terminal "
                     f"FROM hub_terminals WHERE node_id IN ({synthetic})")
        conn.execute("INSERT OR IGNORE INTO hub_terminals_node SELECT month, node_id, terminal "
                     f"FROM hub_terminals WHERE node_id IN ({synthetic})")
    conn.execute("ANALYZE")
    total = conn.execute("SELECT count(*) FROM hub_monthly WHERE month = '2026-09'").fetchone()[0]
    t = time.perf_counter()
    conn.execute("SELECT count(*), sum(n) FROM hub_monthly").fetchone()
    base_s = time.perf_counter() - t
    timings = {}
    for group in ("township", "node", "column", "resource"):
        t = time.perf_counter()
        stats.table(conn, group, {"month": "2026-09"})
        timings[group] = time.perf_counter() - t
    t = time.perf_counter()
    reports.build(conn, "2026-09", county="bench")
    report_s = time.perf_counter() - t
    out["stats"] = {"monthly_rows": total, "baseline_scan_ms": base_s * 1000,
                    "table_ms": {g: v * 1000 for g, v in timings.items()}, "monthly_report_ms": report_s * 1000}
    db_mb = (cfg.data_path / "hub.db").stat().st_size / 2 ** 20
    out["db_mb"] = db_mb
    conn.close()

    b, h, s = out["batches"], out["heartbeats"], out["stats"]
    print(f"batches: {b['events']:,} events in {b['batches']:,} batches of {args.per_batch} "
          f"({b['bytes_per_event']:.1f} bytes/event on the wire, sealed in {b['seal_s']:.1f} s)")
    print(f"  baseline gunzip + json.loads per line: {b['baseline_parse_events_per_s']:,.0f} events/s")
    print(f"  hub ingest_batch (verify, parse, aggregate, commit FULL): {b['ingest_events_per_s']:,.0f} events/s "
          f"(×{b['ratio']:.2f} of the baseline, one core)")
    print(f"  redelivered batch answered 'duplicate' in {b['duplicate_ms']:.2f} ms")
    print(f"heartbeats: baseline bare Ed25519 verify {h['baseline_verify_per_s']:,.0f}/s; "
          f"verify_request + record {h['heartbeats_per_s']:,.0f}/s (×{h['ratio']:.2f}, one core, no HTTP)")
    print(f"statistics for one month of {args.stat_nodes} nodes ({s['monthly_rows']:,} hub_monthly rows, "
          f"480 resources, 30 days): "
          f"baseline count(*) {s['baseline_scan_ms']:.0f} ms; "
          + ", ".join(f"by {g} {v:.0f} ms" for g, v in s["table_ms"].items())
          + f"; whole monthly report {s['monthly_report_ms']:.0f} ms")
    print(f"hub.db size: {db_mb:.0f} MB")
    return out


if __name__ == "__main__":
    main()
