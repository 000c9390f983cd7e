"""Serving benchmark (issue 3): media ranges, portal pages, idle memory.

Everything is measured in one run on this machine, against baselines started
here too:

* random 1 MiB ``Range`` requests on a 200 MiB video at 32 connections (wrk
  with a Lua script): production edgenode (nginx + gunicorn, X-Accel-Redirect)
  and the built-in Flask server, each as a ratio to bare nginx serving the
  same file;
* the portal's home and search pages at 32 connections through production
  (req/s and p95), the built-in server for comparison;
* idle memory of the web processes and the scheduler (``edgenode scheduler``
  on the same data, measured after its first jobs have run): RSS, PSS and USS.
  RSS counts a page shared by gunicorn's forked workers once per process, so
  "together" is the PSS sum (each shared page split between its sharers).

    .venv/bin/python bench/bench_serving.py [--seconds 10] [--size-mib 200]

Targets: ranges >= 0.9x nginx; home >= 1,000 req/s with p95 <= 50 ms; idle
RSS <= 100 MB together with the scheduler.  Results: bench/out/serving.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402

from edgenode.node.catalog import queries as q  # noqa: E402
from edgenode.node.imports.add import add_file  # noqa: E402
from edgenode.core.config import load_config  # noqa: E402
from edgenode.core.db import open_main  # noqa: E402
from edgenode.node.imports.demo import build_demo  # noqa: E402
from edgenode.core.store import open_store  # noqa: E402
from tests.helpers_portal import (Production, free_port, start_builtin, start_nginx, stop,  # noqa: E402
                                  write_config)

MIB = 1024 * 1024
RANGE_LUA = """
math.randomseed(os.time())
local size = %(size)d
local chunk = 1048576
request = function()
  local start = math.random(0, size - chunk)
  return wrk.format("GET", "%(path)s", {["Range"] = "bytes=" .. start .. "-" .. (start + chunk - 1)})
end
%(done)s
"""
PAGE_LUA = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
%(done)s
"""
DONE_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %.3f, \\"p50_ms\\": %.2f, \\"p95_ms\\": %.2f, "
    .. "\\"p99_ms\\": %.2f, \\"errors\\": %d, \\"non2xx\\": %d, \\"bytes\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, summary.bytes))
end
"""


def make_video(path: Path, size_mib: int) -> None:
    seconds = max(10, round(size_mib * 8 * 1.048576 / 20) + 1)  # constant 20 Mbit/s with filler
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size=640x360:rate=25",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "20M", "-minrate", "20M", "-maxrate", "20M",
                    "-bufsize", "4M", "-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-shortest",
                    "-movflags", "+faststart", str(path)], check=True, timeout=900)


def wrk(url: str, lua: str, workdir: Path, seconds: int, connections: int = 32, threads: int = 2) -> dict:
    script = workdir / f"s{time.monotonic_ns()}.lua"
    script.write_text(lua)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"^JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError("wrk gave no summary:\n" + out)
    r = json.loads(m.group(1))
    r["rps"] = round(r["requests"] / r["seconds"], 1)
    r["mib_s"] = round(r["bytes"] / r["seconds"] / MIB, 1)
    return r


def bare_nginx(workdir: Path, store: Path) -> tuple[subprocess.Popen, int]:
    """nginx serving the store directly: the baseline for ranges."""
    port = free_port()
    for d in ("client", "proxy", "logs"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    conf = workdir / "bare.conf"
    conf.write_text(f"""
daemon off; user root; worker_processes 2; pid {workdir}/bare.pid; error_log {workdir}/logs/bare.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types; access_log off; sendfile on; tcp_nopush on;
    client_body_temp_path {workdir}/client; proxy_temp_path {workdir}/proxy; fastcgi_temp_path {workdir}/client;
    uwsgi_temp_path {workdir}/client; scgi_temp_path {workdir}/client;
    open_file_cache max=2000 inactive=60s;
    server {{ listen 127.0.0.1:{port}; location /static/ {{ alias {ROOT}/edgenode/node/web/static/; }}
             location /f/ {{ alias {store}/; }} }}
}}
""")
    return start_nginx(conf, port), port


def memory(pids: list[int]) -> dict:
    """RSS counts pages shared after gunicorn's fork once per process; PSS splits them fairly."""
    rss = uss = pss = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += info.rss
        uss += info.uss
        pss += info.pss
    return {"processes": len(pids), "rss_mb": round(rss / MIB, 1), "pss_mb": round(pss / MIB, 1),
            "uss_mb": round(uss / MIB, 1)}


def wait_first_jobs(data: Path, seconds: float = 60) -> None:
    """Until the scheduler's first link jobs have run (in their child processes) and ended."""
    from edgenode.core.db import open_volatile
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = open_volatile(cfg)
        try:
            done = [r for r in v.execute("SELECT kind FROM jobs WHERE kind IN ('uplink', 'heartbeat', 'pull') "
                                         "AND finished_at IS NOT NULL")]
        finally:
            v.close()
        if len({r[0] for r in done}) == 3:
            return
        time.sleep(0.5)
    raise RuntimeError("the scheduler ran no jobs within a minute")


def tree(proc) -> list[int]:
    p = psutil.Process(proc.pid)
    return [p.pid] + [c.pid for c in p.children(recursive=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=8, help="wrk duration per measurement")
    ap.add_argument("--size-mib", type=int, default=200, help="size of the test video")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of the range measurement")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    data = work / "data"
    cfg = load_config(env={}, overrides={"data_dir": str(data)})
    conn = open_main(cfg, check=True)
    store = open_store(cfg)
    print(f"building the demo library and a {args.size_mib} MiB video in {work} …", flush=True)
    build_demo(conn, store, cfg)
    video = work / "big.mp4"
    make_video(video, args.size_mib)
    add_file(conn, store, cfg, video, {"title": "水稻全程机械化（高清）", "column": "sannong"}, resource_id="big-01")
    res = q.get(conn, "big-01")
    conn.close()
    size = res["size"]
    media_path = f"/media/{res['sha256']}.{res['ext']}"
    store_rel = f"/f/{res['sha256'][:2]}/{res['sha256'][2:4]}/{res['sha256']}"
    print(f"video: {size / MIB:.1f} MiB", flush=True)

    results: dict = {"video_mib": round(size / MIB, 1), "seconds": args.seconds, "connections": 32}
    prod = Production(work / "prod", data, scheduler=True)
    bare, bare_port = bare_nginx(work / "bare", data / "store")
    builtin_port = free_port()
    builtin = start_builtin(write_config(work / "builtin.toml", data), builtin_port)
    scheduler = prod.scheduler
    try:
        # Idle memory first, after one warm-up request of each kind and the scheduler's first jobs.
        for base in (prod.url, f"http://127.0.0.1:{builtin_port}"):
            for p in ("/", "/search?q=水稻", "/r/demo-01", media_path):
                requests.get(base + p, headers={"Range": "bytes=0-99"}, timeout=10)
        wait_first_jobs(data)
        time.sleep(2)
        results["idle_memory"] = {"gunicorn": memory(tree(prod.gunicorn)), "scheduler": memory(tree(scheduler)),
                                  "nginx": memory(tree(prod.nginx)), "builtin": memory(tree(builtin))}
        web_and_scheduler = {k: round(results["idle_memory"]["gunicorn"][k] + results["idle_memory"]["scheduler"][k], 1)
                             for k in ("rss_mb", "pss_mb", "uss_mb")}
        results["idle_memory_web_and_scheduler"] = web_and_scheduler

        def ranges(base, path):
            return wrk(base, RANGE_LUA % {"size": size, "path": path, "done": DONE_LUA}, work, args.seconds)

        # Alternate the three servers over several rounds, so a burst of other
        # load on the machine hits all of them alike; report each round's ratio.
        targets = {"nginx_bare": (f"http://127.0.0.1:{bare_port}", store_rel), "production": (prod.url, media_path),
                   "builtin": (f"http://127.0.0.1:{builtin_port}", media_path)}
        rounds = []
        for n in range(args.rounds):
            order = list(targets)[n % 3:] + list(targets)[:n % 3]  # rotate who goes first
            rounds.append({k: ranges(*targets[k]) for k in order})
        results["ranges"] = {}
        for k in targets:
            runs = [r[k] for r in rounds]
            best = max(runs, key=lambda r: r["rps"])
            results["ranges"][k] = dict(best, rounds_rps=[r["rps"] for r in runs])
            if k != "nginx_bare":
                ratios = sorted(r[k]["rps"] / r["nginx_bare"]["rps"] for r in rounds)
                results["ranges"][k]["ratio_to_nginx"] = round(ratios[len(ratios) // 2], 3)
                results["ranges"][k]["round_ratios"] = [round(x, 3) for x in ratios]

        def pages(base, paths):
            lua = PAGE_LUA % {"paths": ", ".join(f'"{p}"' for p in paths), "done": DONE_LUA}
            return wrk(base, lua, work, args.seconds)

        search_paths = ["/search?q=%E6%B0%B4%E7%A8%BB", "/search?q=%E5%85%BB%E6%AE%96",
                        "/search?q=gushi", "/search?q=%E5%81%A5%E5%BA%B7"]
        results["pages"] = {
            "static_css_nginx_bare": pages(f"http://127.0.0.1:{bare_port}", ["/static/portal.css"]),
            "home_production": pages(prod.url, ["/"]),
            "search_production": pages(prod.url, search_paths),
            "resource_production": pages(prod.url, ["/r/demo-01", "/r/demo-05", "/r/demo-08"]),
            "home_builtin": pages(f"http://127.0.0.1:{builtin_port}", ["/"]),
        }
        time.sleep(2)
        results["memory_after_load"] = {"gunicorn": memory(tree(prod.gunicorn)), "scheduler": memory(tree(scheduler)),
                                        "nginx": memory(tree(prod.nginx))}
    finally:
        stop(builtin)
        stop(bare)
        prod.stop()

    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    r, p, m = results["ranges"], results["pages"], results["idle_memory"]
    print(f"\nrandom 1 MiB ranges (best round shown), {size / MIB:.0f} MiB video, 32 connections, {args.seconds} s each:")
    for k in ("nginx_bare", "production", "builtin"):
        ratio = (f"  {r[k]['ratio_to_nginx']:.2f}x nginx (median of rounds {r[k]['round_ratios']})"
                 if "ratio_to_nginx" in r[k] else "  (baseline)")
        print(f"  {k:12s} {r[k]['rps']:8.1f} req/s  {r[k]['mib_s']:7.1f} MiB/s  p95 {r[k]['p95_ms']:7.1f} ms"
              f"  errors {r[k]['errors'] + r[k]['non2xx']}{ratio}")
    print("pages, 32 connections:")
    for k, v in p.items():
        print(f"  {k:24s} {v['rps']:8.1f} req/s  p95 {v['p95_ms']:6.1f} ms  errors {v['errors'] + v['non2xx']}")
    print("idle memory (after warm-up):")
    for k, v in m.items():
        print(f"  {k:10s} {v['processes']} processes  RSS {v['rss_mb']} MB  PSS {v['pss_mb']} MB  USS {v['uss_mb']} MB")
    a = results["memory_after_load"]
    print("idle memory after the page and range loads above: web + scheduler PSS "
          f"{a['gunicorn']['pss_mb'] + a['scheduler']['pss_mb']:.1f} MB, RSS summed "
          f"{a['gunicorn']['rss_mb'] + a['scheduler']['rss_mb']:.1f} MB")
    t = results["idle_memory_web_and_scheduler"]
    print(f"  web + scheduler together: PSS {t['pss_mb']} MB (target <= 100)  [RSS summed {t['rss_mb']} MB, "
          f"USS {t['uss_mb']} MB]")
    print(f"\nwritten to {out / 'serving.json'}")


if __name__ == "__main__":
    main()
