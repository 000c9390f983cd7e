"""Staff pages at county scale (issue 18): the dashboard (problems first) and the problem filter of the
fleet table, with 2,000 enrolled nodes about 35% of which have a problem, while the fleet's ingest
runs beside them.

The hub runs as in production (``edgenode hub serve``: gunicorn, 2 workers × 4 threads) on
loopback.  2,000 nodes are enrolled with their own keys (bench/fleet_sim.py's ``enroll_fleet``)
and given latest heartbeats with ~5% of each kind of problem (tests/helpers_fleet.py).  Beside
the measurement, fleet_sim's client processes send every node's signed heartbeat and usage batch
once per simulated 15 minutes: ``--speedup 1`` is a real county's rate (2,000 heartbeats and
batches per 15 minutes), ``--speedup 30`` thirty times that.  One logged-in staff client then
GETs each page in turn; the baseline is the bare login page on the same hub in the same run.

    .venv/bin/python bench/bench_hub_pages.py                  # real rate, then 30× the real rate
    .venv/bin/python bench/bench_hub_pages.py --speedups 1 --requests 30

Results: bench/out/hub_pages.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PAGES = {"login (baseline)": "/login", "dashboard /": "/", "only problems /fleet?problems=1": "/fleet?problems=1",
         "full fleet table /fleet": "/fleet"}


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _session(url: str, user: str, password: str):
    import requests
    s = requests.Session()
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', s.get(url + "/login").text).group(1)
    r = s.post(url + "/login", data={"username": user, "password": password, "csrf_token": token},
               allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    return s


def measure(url: str, session, requests_per_page: int, hub_pid: int | None = None) -> dict:
    """Latency per page; with ``hub_pid`` (nothing else sending), also the hub's CPU per request."""
    from fleet_sim import _cpu
    out = {}
    for name, path in PAGES.items():
        lat = []
        cpu0 = _cpu(hub_pid) if hub_pid else 0.0
        for _ in range(requests_per_page):
            t0 = time.perf_counter()
            r = session.get(url + path)
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, (path, r.status_code)
        out[name] = {"p50_ms": _pct(lat, 50) * 1000, "p95_ms": _pct(lat, 95) * 1000, "bytes": len(r.content)}
        if hub_pid:
            out[name]["hub_cpu_ms"] = (_cpu(hub_pid) - cpu0) / requests_per_page * 1000
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--requests", type=int, default=40, help="GETs per page per run.")
    ap.add_argument("--speedups", default="1,30", help="Ingest rates to run beside, as multiples of a real county's.")
    ap.add_argument("--events-per-batch", type=int, default=200)
    ap.add_argument("--clients", type=int, default=2, help="Ingest client processes.")
    args = ap.parse_args(argv)

    import fleet_sim
    from edgenode.core.config import load_config
    from edgenode.hub import problems, staff
    from edgenode.hub.database import open_hub
    from tests import helpers_fleet
    from tests.helpers_sync import free_port

    data_dir = Path(tempfile.mkdtemp(prefix="bench-hub-pages-"))
    fleet = fleet_sim.enroll_fleet(data_dir, args.nodes)
    cfg = load_config(env={}, overrides={"data_dir": str(data_dir)})
    conn = open_hub(cfg)
    seeded = helpers_fleet.seed(conn, enrolled=[nid for nid, _ in fleet])
    staff.set_password(conn, "县中心", "bench password 1")
    port = free_port()
    hub = fleet_sim.start_hub(data_dir, port, 2, 4)
    url = f"http://127.0.0.1:{port}"
    results = {"nodes": args.nodes, "problem_nodes_seeded": sum(1 for k in seeded.values() if k),
               "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "runs": []}
    try:
        session = _session(url, "县中心", "bench password 1")
        results["quiet"] = measure(url, session, max(10, args.requests // 2), hub.pid)
        # Only the healthy nodes send: a simulated heartbeat is healthy and would cure the seeded problems.
        # They send at the whole fleet's rate, so the hub sees 2,000 nodes' worth of ingest.
        healthy = [f for f in fleet if not seeded[f[0]]]
        first_batch = 1
        for speedup in [float(x) for x in args.speedups.split(",")]:
            before = len(problems.problem_list(conn, cfg)["nodes"])
            interval = 900.0 / speedup * len(healthy) / len(fleet)  # real seconds per simulated 15 minutes
            seconds = max(20.0, args.requests * len(PAGES) * 0.6)
            ingest: dict = {}

            def run_ingest():
                ingest.update(fleet_sim.run_phase(
                    port, hub.pid, healthy, "mixed", seconds=seconds, interval=interval,
                    events_per_batch=args.events_per_batch, first_batch=first_batch, clients=args.clients,
                    max_events=len(healthy) * args.events_per_batch * (int(seconds / interval) + 2)))

            t = threading.Thread(target=run_ingest)
            t.start()
            time.sleep(min(seconds / 4, 3.0) + 2.0)  # sealing is done and the clients are sending
            pages = measure(url, session, args.requests)
            t.join()
            first_batch += ingest["rounds"] + 2
            results["runs"].append({"speedup": speedup, "pages": pages, "problem_nodes_before": before,
                                    "problem_nodes_after": len(problems.problem_list(conn, cfg)["nodes"]),
                                    "ingest": {k: ingest[k] for k in ("heartbeats_per_s", "batches_per_s",
                                                                      "events_per_s", "errors", "hb_p95_ms",
                                                                      "batch_p95_ms")}})
    finally:
        conn.close()
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
    report(results)
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "hub_pages.json").write_text(json.dumps(results, indent=1, default=str))
    return results


def report(r: dict) -> None:
    print(f"hub pages: {r['nodes']} nodes, {r['problem_nodes_seeded']} with a problem; {r['cpus']} CPUs shared by "
          f"hub, ingest clients and the page client; load before {' '.join(f'{x:.1f}' for x in r['loadavg_before'])}")
    print("  quiet hub (no ingest): the hub's own CPU per request, independent of other load on the machine")
    for name, p in r["quiet"].items():
        print(f"    {name:34} hub CPU {p['hub_cpu_ms']:6.1f} ms/request  p50 {p['p50_ms']:6.0f} ms  "
              f"p95 {p['p95_ms']:6.0f} ms")
    for run in r["runs"]:
        i = run["ingest"]
        base = run["pages"]["login (baseline)"]["p95_ms"]
        print(f"  ingest beside at {run['speedup']:g}× a real county's rate: {i['heartbeats_per_s']:.1f} heartbeats/s, "
              f"{i['batches_per_s']:.1f} batches/s ({i['events_per_s']:,.0f} events/s), {i['errors']} errors; "
              f"problem nodes {run['problem_nodes_before']} → {run['problem_nodes_after']}")
        for name, p in run["pages"].items():
            verdict = "" if name.startswith("login") or name.startswith("full") else \
                (" ✓ ≤ 300 ms" if p["p95_ms"] <= 300 else " ✗ > 300 ms")
            print(f"    {name:34} p50 {p['p50_ms']:6.0f} ms  p95 {p['p95_ms']:6.0f} ms  "
                  f"(×{p['p95_ms'] / base:.0f} the login page's p95)  {p['bytes'] / 1024:,.0f} KB{verdict}")


if __name__ == "__main__":
    main()
