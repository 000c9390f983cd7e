"""Villagers' contributions (issue 21), against baselines measured in the same run.

1. **Upload throughput on loopback**: one file PATCHed through the node's tus endpoint
   (nginx with request buffering off → gunicorn → the fsynced part file), against a plain
   HTTP PUT of the same file to nginx (WebDAV PUT into a directory on the same disk).
   Both sent by curl, so the client is the same.  Target: tus >= 0.8x the PUT.
2. **Upstream overhead with 20 cuts**: an approved contribution sent to the real hub
   (``edgenode hub serve``) through a TCP proxy that cuts the connection 20 times at random
   points; bytes that crossed the proxy towards the hub beyond the file's size, as a share of
   the file.  Target: <= 10 %.

    .venv/bin/python bench/bench_contrib.py [--upload-mb 512] [--upstream-mb 200] [--dir /var/tmp] [--runs 3] [--upload-only]

Results: bench/out/contrib.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edgenode.core.db import open_main, transaction  # noqa: E402
from edgenode.node.contrib import queries as q  # noqa: E402
from edgenode.node.contrib import upstream, uploads  # noqa: E402
from tests.conftest import make_config  # noqa: E402
from tests.helpers_contrib import UploadCuttingProxy, meta_for, metadata_header  # noqa: E402
from tests.helpers_portal import Production, start_nginx, stop  # noqa: E402
from tests.helpers_sync import Hub, enrolled_node, free_port  # noqa: E402

MB = 1024 * 1024


def random_file(path: Path, mb: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(MB))
    return path


def put_nginx(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (work / "put").mkdir(parents=True)
    for d in ("client", "logs"):
        (work / d).mkdir()
    conf = work / "nginx.conf"
    conf.write_text(f"""daemon off; worker_processes 2; pid {work}/nginx.pid; error_log {work}/logs/error.log warn;
{"user root root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {work}/client;
  server {{ listen 127.0.0.1:{port};
    location /static/portal.css {{ return 200 "ok"; }}
    location /put/ {{ root {work}; dav_methods PUT; client_max_body_size 0; create_full_put_path on; }} }} }}
""")
    return start_nginx(conf, port), port


def curl(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run(["curl", "--max-time", "60", "-sf", "-o", "/dev/null", *args], check=True)
    return time.perf_counter() - t


def tus_once(base: str, src: Path) -> tuple[float, str]:
    import requests
    s = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + "/contrib/").text).group(1)
    r = s.post(base + "/api/v1/contrib/files", headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(src.stat().st_size), "X-CSRFToken": token,
        "Upload-Metadata": metadata_header(**meta_for(src.with_suffix(".mp4")))})
    r.raise_for_status()
    return curl("-X", "PATCH", "-T", str(src), "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                "-H", "Content-Type: application/offset+octet-stream", "-H", "Expect:",
                base + r.headers["Location"]), r.headers["Location"].rsplit("/", 1)[-1]


def _same_file(a: Path, b: Path) -> bool:
    digests = []
    for path in (a, b):
        with open(path, "rb") as f:
            digests.append(hashlib.file_digest(f, "sha256").hexdigest())
    return digests[0] == digests[1]


def bench_upload(work: Path, mb: int, runs: int = 3) -> dict:
    """Rounds of PUT, PUT + fsync and tus PATCH in turn, so a change of load on a shared machine
    falls on all three; best of ``runs`` each.  Also the servers' CPU seconds per upload (nginx's
    workers for the PUT; nginx's workers and gunicorn's worker for tus), steadier than wall time."""
    work.mkdir(parents=True, exist_ok=True)
    src = random_file(work / "src.bin", mb)
    # The defaults (2048 MB a file, 8192 MB a day) allow these runs; Production writes its own config.
    open_main(make_config(work / "data"), check=True).close()
    node = Production(work / "prod", work / "data")
    base_proc, base_port = put_nginx(work / "putnginx")
    put, put_sync, tus, cpu = [], [], [], {"put": [], "tus": []}
    try:
        for i in range(runs):
            c = _cpu(base_proc)
            put.append(curl("-T", str(src), "-H", "Expect:", f"http://127.0.0.1:{base_port}/put/f{i}"))
            cpu["put"].append(_cpu(base_proc) - c)
            # The same durability as the tus upload, which fsyncs the complete file before it answers.
            put_sync.append(curl("-T", str(src), "-H", "Expect:", f"http://127.0.0.1:{base_port}/put/s{i}")
                            + _fsync(work / "putnginx" / "put" / f"s{i}"))
            c = _cpu(node.nginx) + _cpu(node.gunicorn)
            t, uid = tus_once(node.url, src)
            tus.append(t)
            cpu["tus"].append(_cpu(node.nginx) + _cpu(node.gunicorn) - c)
            stored = work / "data" / "contrib" / "incoming" / f"{uid}.mp4"
            assert _same_file(stored, src), "the uploaded file differs from the source"
            stored.unlink()
            for f in (work / "putnginx" / "put").iterdir():  # room for the next round on a small disk
                f.unlink()
    finally:
        stop(base_proc)
        node.stop()
    return {"mb": mb, "put_s": put, "put_fsync_s": put_sync, "tus_s": tus, "put_mb_s": mb / min(put),
            "put_fsync_mb_s": mb / min(put_sync), "tus_mb_s": mb / min(tus), "ratio": min(put) / min(tus),
            "ratio_fsync": min(put_sync) / min(tus), "server_cpu_s": {k: min(v) for k, v in cpu.items()}}


def _cpu(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by the children of ``proc`` (nginx's workers, gunicorn's worker)."""
    import psutil
    total = 0.0
    for child in psutil.Process(proc.pid).children():
        try:
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _fsync(path: Path) -> float:
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def bench_upstream(work: Path, mb: int, cuts: int = 20) -> dict:
    hub = Hub(work / "hub").start()
    try:
        cfg = enrolled_node(work, hub)
        conn = open_main(cfg)
        cid = _approved_file(cfg, conn, mb)
        size = q.contribution(conn, cid)["size"]
        proxy = UploadCuttingProxy(hub.port, cuts=cuts, min_bytes=64 * 1024, max_bytes=size // cuts, seed=20)
        url, tries, t = f"http://127.0.0.1:{proxy.port}", 0, time.perf_counter()
        while q.contribution(conn, cid)["state"] != "uploaded":
            tries += 1
            try:
                upstream.send_all(cfg, conn, url)
            except Exception:  # a cut; the next try resumes from the hub's offset
                pass
        wall = time.perf_counter() - t
        proxy.close()
        conn.close()
    finally:
        hub.stop()
    extra = proxy.bytes_up - size
    return {"mb": mb, "size": size, "cuts": proxy.cuts_done, "tries": tries, "bytes_up": proxy.bytes_up,
            "extra_bytes": extra, "extra_share": extra / size, "chunk_mb": cfg["contrib.chunk_mb"], "wall_s": wall}


def _approved_file(cfg, conn, mb: int) -> str:
    """An approved contribution of ``mb`` MB without the processing step (the transfer is what is measured)."""
    cid = os.urandom(16).hex()
    path = uploads.area(cfg, "ready") / f"{cid}.mp4"
    random_file(path, mb)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with transaction(conn):
        q.insert_contribution(conn, cid, {"title": "测试", "credit": "", "campaign": "", "consent": True,
                                          "filename": "a.mp4"}, time.time())
        q.update(conn, cid, time.time(), state="approved", kind="video", ext="mp4", size=path.stat().st_size,
                 sha256=digest)
    return cid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upload-mb", type=int, default=512)
    ap.add_argument("--upstream-mb", type=int, default=200)
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--runs", type=int, default=3, help="rounds of the upload comparison (best of)")
    ap.add_argument("--upload-only", action="store_true", help="only the upload throughput, not the upstream")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-contrib-", dir=args.dir))
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.1f} on {os.cpu_count()} CPUs")
    try:
        u = bench_upload(tmp / "u", args.upload_mb, args.runs)
        print(f"upload of {u['mb']} MB on loopback (best of {len(u['put_s'])}): plain PUT to nginx "
              f"{u['put_mb_s']:.0f} MB/s, followed by an fsync {u['put_fsync_mb_s']:.0f} MB/s; tus PATCH through "
              f"nginx + gunicorn, fsynced {u['tus_mb_s']:.0f} MB/s -> {u['ratio']:.2f}x the PUT (target >= 0.8x); "
              f"{u['ratio_fsync']:.2f}x the PUT + fsync (the same durability); servers' CPU per upload: "
              f"PUT {u['server_cpu_s']['put']:.2f} s, tus {u['server_cpu_s']['tus']:.2f} s")
        s = None if args.upload_only else bench_upstream(tmp / "s", args.upstream_mb)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        if s:
            print(f"upstream of {s['mb']} MB to the hub through {s['cuts']} cuts ({s['tries']} tries, chunks of "
                  f"{s['chunk_mb']} MB): {s['extra_bytes']:,} bytes beyond the file = {s['extra_share']:.2%} "
                  f"(target <= 10 %), {s['wall_s']:.1f} s")
        out = REPO / "bench" / "out"
        out.mkdir(exist_ok=True)
        (out / "contrib.json").write_text(json.dumps({"upload": u, "upstream": s, "loadavg": [load, os.getloadavg()]},
                                                     indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
