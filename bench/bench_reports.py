"""The annual-assessment report for a 2,000-node county: how long the yearly .xlsx takes
(issue 18: at most 10 s), with the ingest running beside it.

A hub database is seeded with a year of rollups as ingest writes them (``hub_monthly``,
``hub_monthly_col``, ``hub_monthly_res``, ``hub_terminals*``, ``hub_titles``) for ``--nodes`` service points;
then, while a second process ingests signed batches into the same database as fast as
it can (``ingest_batch``, the network path minus HTTP), the report is built
(``reports.build``) and written (``reports_write.to_xlsx``), ``--runs`` times.  Figures are
printed against a baseline measured in the same run: one plain scan of the year's rows
(``SELECT count(*), sum(n), sum(seconds)`` over ``hub_monthly``).  Also the PDF and CSV.

    .venv/bin/python bench/bench_reports.py                 # 2,000 nodes, one year
    .venv/bin/python bench/bench_reports.py --nodes 50      # smoke
    .venv/bin/python bench/bench_reports.py --data-dir /tmp/bench-reports-XXXX   # again, without seeding

Results: bench/out/reports.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ["sannong", "pushi", "xinchengshi", "shequ"]
YEAR = "2026"


def seed(conn, nodes: int, *, resources_per_column: int, watched: int, terminals: int, live_share: float = 0.0) -> int:
    """A year of a county's rollups, inserted directly; returns the hub_monthly rows.  ``live_share`` of the
    points watch one or two of the month's two live broadcasts (``live_view`` rows) each month."""
    from edgenode.core.db import transaction
    rnd, live_rnd = random.Random(7), random.Random(11)  # the live rows leave the other figures as they were
    catalogue = [(c, f"{c}-{r:04d}") for c in COLUMNS for r in range(resources_per_column)]
    rows = 0
    with transaction(conn):
        conn.executemany("INSERT INTO hub_titles VALUES (?, ?, 0)",
                         [(rid, f"{c}栏目第{i}个节目") for i, (c, rid) in enumerate(catalogue)])
        for i in range(nodes):
            nid = f"{i:032x}"
            conn.execute("INSERT INTO hub_nodes (node_id, public_key, name, township, enrolled_at) "
                         "VALUES (?, '', ?, ?, 0)", (nid, f"第{i:04d}村服务点", f"第{i % 18:02d}镇"))
            for m in range(1, 13):
                month = f"{YEAR}-{m:02d}"
                monthly, col, terms = [], {}, []
                for c, rid in rnd.sample(catalogue, watched):
                    for k in ("view", "play_start", "progress"):
                        n, secs = rnd.randrange(1, 30), (rnd.random() * 1800 if k == "progress" else 0.0)
                        monthly.append((nid, month, c, rid, k, n, secs))
                        acc = col.setdefault((month, nid, c, k), [0, 0.0])
                        acc[0] += n
                        acc[1] += secs
                    terms += [(nid, month, c, rid, f"t{rnd.randrange(terminals)}") for _ in range(2)]
                if live_rnd.random() < live_share:
                    for b in live_rnd.sample(["a", "b"], live_rnd.choice([1, 2])):
                        n, secs = live_rnd.randrange(20, 400), live_rnd.random() * 7200
                        monthly.append((nid, month, "", f"shequ.live-{m:02d}{b}", "live_view", n, secs))
                        acc = col.setdefault((month, nid, "", "live_view"), [0, 0.0])
                        acc[0] += n
                        acc[1] += secs
                monthly += [(nid, month, "", "", "view", rnd.randrange(20, 200), 0.0)]  # home and column pages
                conn.executemany("INSERT INTO hub_monthly VALUES (?, ?, ?, ?, ?, ?, ?)", monthly)
                conn.executemany("INSERT INTO hub_monthly_col VALUES (?, ?, ?, ?, ?, ?)",
                                 [(*k, *v) for k, v in col.items()] + [(month, nid, "", "view", monthly[-1][5], 0.0)])
                conn.executemany("INSERT OR IGNORE INTO hub_terminals VALUES (?, ?, ?, ?, ?)", terms)
                conn.executemany("INSERT OR IGNORE INTO hub_terminals_col VALUES (?, ?, ?, ?)",
                                 [(t[1], t[0], t[2], t[4]) for t in terms])
                conn.executemany("INSERT OR IGNORE INTO hub_terminals_node VALUES (?, ?, ?)",
                                 [(t[1], t[0], t[4]) for t in terms])
                rows += len(monthly)
        # The county-wide rollups ingest keeps beside them (schema migration 23 fills them the same way).
        conn.execute("INSERT INTO hub_monthly_res SELECT month, column_key, resource_id, kind, sum(n), sum(seconds) "
                     "FROM hub_monthly WHERE resource_id <> '' GROUP BY month, column_key, resource_id, kind")
        conn.execute("INSERT OR IGNORE INTO hub_terminals_year_col SELECT substr(month, 1, 4), node_id, column_key, "
                     "terminal FROM hub_terminals_col")
        conn.execute("INSERT OR IGNORE INTO hub_terminals_year_node SELECT substr(month, 1, 4), node_id, terminal "
                     "FROM hub_terminals_node")
    conn.execute("ANALYZE")
    return rows


def _ingest(data_dir: str, stop, counter) -> None:
    """Ingest signed 500-event batches from one node as fast as the database takes them."""
    from edgenode.core.config import load_config
    from edgenode.hub import registry
    from edgenode.hub.database import open_hub
    from edgenode.hub.ingest import ingest_batch
    from tests.helpers_hub import make_events, new_identity, seal

    cfg = load_config(env={}, overrides={"data_dir": data_dir})
    conn = open_hub(cfg)
    ident = new_identity()
    registry.enroll(conn, code=registry.new_code(conn), node_id=ident.node_id, public_key=ident.public_b64(),
                    name="写入中的服务点")
    node = registry.get_node(conn, ident.node_id)
    no = 0
    while not stop.is_set():
        no += 1
        data, sig = seal(ident, no, make_events(500, first_seq=1 + no * 500, seed=no, terminals=40,
                                                start=1780000000.0 + no * 600))
        ingest_batch(conn, node, no, data, sig)
        with counter.get_lock():
            counter.value += 500


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--resources", type=int, default=120, help="Resources per column in the catalogue.")
    ap.add_argument("--watched", type=int, default=30, help="Resources a node's users watch in a month.")
    ap.add_argument("--terminals", type=int, default=25, help="Terminals per node.")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--live-share", type=float, default=0.8,
                    help="Share of points watching a live broadcast each month (0: a county without live).")
    ap.add_argument("--no-ingest", action="store_true", help="Measure without the ingest beside it.")
    ap.add_argument("--data-dir", help="Reuse a hub data directory a previous run seeded (it is kept).")
    args = ap.parse_args(argv)

    from edgenode.core.config import load_config
    from edgenode.hub import live, reports, reports_write
    from edgenode.hub.database import open_hub

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench-reports-")
    cfg = load_config(env={}, overrides={"data_dir": data_dir})
    conn = open_hub(cfg)
    t = time.perf_counter()
    rows = conn.execute("SELECT count(*) FROM hub_monthly WHERE month LIKE ?", (YEAR + "%",)).fetchone()[0]
    if not rows:
        rows = seed(conn, args.nodes, resources_per_column=args.resources, watched=args.watched,
                    terminals=args.terminals, live_share=args.live_share)
    seed_s = time.perf_counter() - t
    db_mb = (cfg.data_path / "hub.db").stat().st_size / 2 ** 20

    spawn = mp.get_context("spawn")  # a fresh interpreter: no SQLite connection inherited from us
    stop, counter = spawn.Event(), spawn.Value("q", 0)
    ingest = None if args.no_ingest else spawn.Process(target=_ingest, args=(data_dir, stop, counter))
    if ingest:
        ingest.start()
        time.sleep(3)  # let it reach its pace
    started, events0 = time.monotonic(), counter.value
    baseline, build, xlsx, sizes, cpu, live_s = [], [], [], {}, [], []
    for _ in range(args.runs):
        c = time.process_time()
        t = time.perf_counter()
        conn.execute("SELECT count(*), sum(n), sum(seconds) FROM hub_monthly WHERE month BETWEEN ? AND ?",
                     (YEAR + "-01", YEAR + "-12")).fetchone()
        baseline.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = reports.build(conn, YEAR, county="基准县")
        build.append(time.perf_counter() - t)
        t = time.perf_counter()
        live.report_sections(conn, YEAR)  # the live sections' share of the figures, measured alone
        live_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        sizes["xlsx"] = len(reports_write.to_xlsx(report))
        xlsx.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    sizes["pdf"] = len(reports_write.to_pdf(report))
    pdf_s, pdf_cpu = time.perf_counter() - t, time.process_time() - c
    t = time.perf_counter()
    sizes["csv"] = len(reports_write.to_csv(report).encode())
    csv_s = time.perf_counter() - t
    ingest_rate = (counter.value - events0) / (time.monotonic() - started)
    if ingest:
        stop.set()
        ingest.join(30)
    conn.close()

    total = [b + x for b, x in zip(build, xlsx)]
    out = {"nodes": args.nodes, "hub_monthly_rows": rows, "db_mb": db_mb, "seed_s": seed_s,
           "rows": {s["key"]: len(s["rows"]) for s in report["sections"]},
           "baseline_scan_s": statistics.median(baseline), "build_s": statistics.median(build),
           "xlsx_write_s": statistics.median(xlsx),
           "live_sections_s": statistics.median(live_s), "live_share": args.live_share, "annual_xlsx_s": statistics.median(total),
           "annual_xlsx_max_s": max(total), "annual_xlsx_cpu_s": statistics.median(cpu), "pdf_s": pdf_s,
           "pdf_cpu_s": pdf_cpu, "csv_s": csv_s, "bytes": sizes, "ingest_events_per_s_beside": ingest_rate,
           "loadavg": os.getloadavg(), "data_dir": data_dir}
    print(f"county of {args.nodes} nodes, one year: {rows:,} hub_monthly rows ({db_mb:.0f} MB, seeded in "
          f"{seed_s:.0f} s); report rows " + ", ".join(f"{k} {v}" for k, v in out["rows"].items()))
    print(f"baseline: one scan of the year's hub_monthly rows {out['baseline_scan_s']:.2f} s")
    print(f"annual .xlsx: {out['annual_xlsx_s']:.2f} s median, {out['annual_xlsx_max_s']:.2f} s worst of {args.runs} "
          f"(figures {out['build_s']:.2f} s + writing {out['xlsx_write_s']:.2f} s; "
          f"×{out['annual_xlsx_s'] / out['baseline_scan_s']:.1f} of the baseline scan; issue 18 asks ≤ 10 s)")
    print(f"  of the figures, the live-broadcast duty ({args.live_share:.0%} of points watching each month): "
          f"{out['live_sections_s']:.2f} s, ×{out['live_sections_s'] / out['baseline_scan_s']:.2f} of the baseline scan")
    print(f"  CPU time of this process for it: {out['annual_xlsx_cpu_s']:.2f} s (wall time above includes waiting "
          f"for a core; load average {out['loadavg'][0]:.1f} on {os.cpu_count()} cores)")
    print(f"same report as PDF {pdf_s:.2f} s ({pdf_cpu:.2f} s CPU, {sizes['pdf'] / 2 ** 20:.1f} MB), "
          f"as CSV {csv_s:.3f} s")
    print("ingest beside it: " + ("not running" if args.no_ingest else f"{ingest_rate:,.0f} events/s"))
    outdir = ROOT / "bench" / "out"
    outdir.mkdir(exist_ok=True)
    (outdir / "reports.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
