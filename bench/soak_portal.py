"""Soak test (issue 3; not run in CI): many LAN clients for a long time against production.

50 simulated clients (threads with their own cookie jar) browse the home,
column and resource pages, search, stream media in 1 MiB ranges and send the
player's beacons, with think time between steps, for 10 minutes against the
production set-up started here: nginx + gunicorn (the shipped settings) and
the scheduler.

"Start" and "end" are both taken idle, so they compare like with like: the
clients first run a warm-up (default 1 minute: pooled connections opened,
caches filled, threads started), leave, and the start snapshot is taken; then
the measured run, the clients leave again, and the end snapshot.  A process
is flat when its RSS grew by at most 2 MB + 2 % and its open files by at most 2.
A per-minute series under load is printed as well.

    .venv/bin/python bench/soak_portal.py [--clients 50] [--minutes 10] [--warmup-minutes 1] [--recycle]

gunicorn's worker recycling (``max_requests``) is off unless ``--recycle``: it
would bound a leak in production, and so hide it here.

Expect 0 errors and every process flat.  Results: bench/out/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from edgenode.node.catalog import queries as q  # noqa: E402
from edgenode.protocol.metadata import COLUMNS  # noqa: E402
from edgenode.core.config import load_config  # noqa: E402
from edgenode.core.db import open_main  # noqa: E402
from edgenode.node.imports.demo import DEMO, build_demo  # noqa: E402
from edgenode.core.store import open_store  # noqa: E402
from tests.helpers_portal import Production  # noqa: E402

WORDS = ["水稻", "养殖", "故事", "健康", "shuidao", "gs", "戏曲", "安全", "医保", "没有这个词"]
MIB = 1024 * 1024


def snapshot(prod: Production, scheduler: subprocess.Popen) -> dict:
    out = {}
    for role, proc in (("gunicorn", prod.gunicorn), ("nginx", prod.nginx)):
        master = psutil.Process(proc.pid)
        children = sorted(master.children(recursive=True), key=lambda c: c.pid)
        for i, p in enumerate([master] + children):
            try:
                m = p.memory_full_info()
                out[f"{role}[{'master' if i == 0 else f'worker{i}'}]"] = {
                    "pid": p.pid, "rss_mb": round(m.rss / MIB, 1), "pss_mb": round(m.pss / MIB, 1), "fds": p.num_fds()}
            except psutil.NoSuchProcess:
                pass
    p = psutil.Process(scheduler.pid)  # its jobs' child processes come and go; the scheduler itself stays
    m = p.memory_full_info()
    out["scheduler"] = {"pid": p.pid, "rss_mb": round(m.rss / MIB, 1), "pss_mb": round(m.pss / MIB, 1),
                        "fds": p.num_fds()}
    return out


def flat(a: dict, b: dict) -> str:
    if a["pid"] != b["pid"]:
        return "replaced"  # gunicorn recycled it (only with --recycle): no verdict
    return "yes" if b["rss_mb"] - a["rss_mb"] <= 2 + 0.02 * a["rss_mb"] and b["fds"] - a["fds"] <= 2 else "NO"


def run_clients(prod, media, seconds, stats, lock, seed, on_minute=None) -> float:
    t0 = time.time()
    stop_at = t0 + seconds
    clients = [Client(prod.url, media, stop_at, stats, lock, seed + n) for n in range(stats["clients"])]
    for c in clients:
        c.start()
    while time.time() < stop_at:
        time.sleep(min(60, max(0.1, stop_at - time.time())))
        if on_minute:
            on_minute(round(time.time() - t0))
    for c in clients:
        c.join(timeout=60)
    return time.time() - t0


class Client(threading.Thread):
    def __init__(self, base: str, media: dict, stop_at: float, stats: dict, lock: threading.Lock, seed: int):
        super().__init__(daemon=True)
        self.base, self.media, self.stop_at, self.stats, self.lock = base, media, stop_at, stats, lock
        self.rng = random.Random(seed)
        self.s = requests.Session()

    def hit(self, method: str, path: str, ok=(200,), **kw) -> requests.Response | None:
        try:
            r = self.s.request(method, self.base + path, timeout=30, **kw)
            good = r.status_code in ok
        except requests.RequestException as e:
            r, good = None, False
            detail = f"{method} {path}: {type(e).__name__}"
        else:
            detail = f"{method} {path}: {r.status_code}"
        with self.lock:
            self.stats["requests"] += 1
            if not good:
                self.stats["errors"] += 1
                if len(self.stats["error_samples"]) < 20:
                    self.stats["error_samples"].append(detail)
        return r

    def think(self, lo=0.2, hi=1.5):
        time.sleep(self.rng.uniform(lo, hi))

    def run(self):
        while time.time() < self.stop_at:
            self.hit("GET", "/")
            self.think()
            col = self.rng.choice(list(COLUMNS))
            self.hit("GET", f"/column/{col}?page={self.rng.choice([1, 1, 2])}")
            self.think()
            self.hit("GET", "/search", params={"q": self.rng.choice(WORDS)})
            self.think()
            rid = self.rng.choice(list(self.media))
            self.hit("GET", f"/r/{rid}")
            url, size, kind = self.media[rid]
            if kind in ("video", "audio"):
                beacon = {"kind": "play_start", "resource": rid}
                self.hit("POST", "/api/v1/usage/beacon", json={"events": [beacon]})
                start = 0
                for _ in range(self.rng.randint(2, 6)):  # stream a few chunks, like a player
                    end = min(start + MIB, size) - 1
                    self.hit("GET", url, ok=(206,), headers={"Range": f"bytes={start}-{end}"})
                    start = end + 1 if end + 1 < size else 0
                    self.think(0.5, 2)
                self.hit("POST", "/api/v1/usage/beacon",
                         json={"events": [{"kind": "play_end", "resource": rid, "seconds": 5}]})
            else:
                self.hit("GET", url, ok=(200,))
            self.think()
        self.s.close()  # a client leaving closes its connections, so the end snapshot counts only live ones


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--warmup-minutes", type=float, default=1)
    ap.add_argument("--recycle", action="store_true",
                    help="keep gunicorn's max_requests recycling (production); by default it is off so a leak shows")
    args = ap.parse_args()
    if not args.recycle:
        os.environ["EDGENODE_GUNICORN_MAX_REQUESTS"] = "0"

    work = Path(tempfile.mkdtemp(prefix="soak-portal-"))
    cfg = load_config(env={}, overrides={"data_dir": str(work / "data")})
    conn = open_main(cfg, check=True)
    build_demo(conn, open_store(cfg), cfg)
    media = {}
    for rid, *_ in DEMO:
        r = q.get(conn, rid)
        media[rid] = (f"/media/{r['sha256']}.{r['ext']}", r["size"], r["kind"])
    conn.close()

    prod = Production(work / "prod", cfg.data_path, scheduler=True)
    scheduler = prod.scheduler
    stats = {"clients": args.clients, "requests": 0, "errors": 0, "error_samples": []}
    lock = threading.Lock()
    series = []
    try:
        requests.get(prod.url + "/", timeout=10)
        cold = snapshot(prod, scheduler)
        print(f"warm-up: {args.clients} clients for {args.warmup_minutes} min …", flush=True)
        run_clients(prod, media, args.warmup_minutes * 60, stats, lock, seed=10_000)
        warm_requests, warm_errors = stats["requests"], stats["errors"]
        time.sleep(3)
        start = snapshot(prod, scheduler)

        def minute(t):
            snap = snapshot(prod, scheduler)
            workers = {k: v for k, v in snap.items() if k.startswith("gunicorn[") and "master" not in k}
            point = {"t": t, "requests": stats["requests"] - warm_requests, "errors": stats["errors"],
                     "worker_rss_mb": [v["rss_mb"] for v in workers.values()],
                     "worker_fds": [v["fds"] for v in workers.values()],
                     "scheduler_rss_mb": snap["scheduler"]["rss_mb"],
                     "nginx_fds": sum(v["fds"] for k, v in snap.items() if k.startswith("nginx["))}
            series.append(point)
            print(f"  {t:6d} s: {point['requests']} requests, {point['errors']} errors; gunicorn workers "
                  f"RSS {point['worker_rss_mb']} MB, FDs {point['worker_fds']}; scheduler RSS "
                  f"{point['scheduler_rss_mb']} MB; nginx FDs {point['nginx_fds']}", flush=True)

        print(f"measured run: {args.minutes} min", flush=True)
        elapsed = run_clients(prod, media, args.minutes * 60, stats, lock, seed=0, on_minute=minute)
        time.sleep(3)
        end = snapshot(prod, scheduler)
    finally:
        prod.stop()

    measured = stats["requests"] - warm_requests
    verdicts = {name: flat(start[name], end[name]) for name in start if name in end}
    result = {"clients": args.clients, "minutes": args.minutes, "warmup_minutes": args.warmup_minutes,
              "requests": measured, "errors": stats["errors"], "warmup_errors": warm_errors,
              "error_samples": stats["error_samples"], "requests_per_second": round(measured / elapsed, 1),
              "cold": cold, "start": start, "end": end, "flat": verdicts,
              "all_flat": all(v == "yes" for v in verdicts.values()), "recycling": args.recycle,
              "series": series}
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"\n{args.clients} clients, {args.minutes} min after a {args.warmup_minutes} min warm-up: {measured} requests "
          f"({result['requests_per_second']}/s), {stats['errors']} errors (warm-up included)")
    print(f"{'process':24s} {'RSS cold':>9s} {'RSS start':>10s} {'RSS end':>8s} {'PSS end':>8s} {'FDs start':>10s} "
          f"{'FDs end':>8s}  flat")
    for name in sorted(set(start) | set(end)):
        a, b, c = start.get(name, {}), end.get(name, {}), cold.get(name, {})
        print(f"{name:24s} {c.get('rss_mb', '-'):>9} {a.get('rss_mb', '-'):>10} {b.get('rss_mb', '-'):>8} "
              f"{b.get('pss_mb', '-'):>8} {a.get('fds', '-'):>10} {b.get('fds', '-'):>8}  "
              f"{verdicts.get(name, '-')}")
    total = sum(v["pss_mb"] for k, v in end.items() if not k.startswith("nginx"))
    print(f"web + scheduler PSS at the end, idle: {total:.1f} MB (target <= 100)")
    for sample in stats["error_samples"]:
        print("  error:", sample)


if __name__ == "__main__":
    main()
