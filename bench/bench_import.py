"""Import throughput (issue 4): the one pipeline against ``cp -r`` + ``sha256sum``.

Makes a signed bundle of ~2 GB in ~200 files (distinct contents, PDF-shaped so the
media check is cheap and the figure is about moving bytes), then measures, in
one run on this machine:

* baseline: ``cp -r`` of the bundle's files, then ``sha256sum`` of the copy (the
  obvious two-pass way to copy and check);
* ceiling: ``cp -r`` alone (no check at all);
* edgenode: ``import_bundle`` into an empty node, in a child process, with its
  peak RSS from ``wait4``: signature check, copy + hash in one pass, fsync of
  every blob, rename into the store, one catalogue transaction.

Before each measured step the page cache is dropped (when allowed) and dirty
data synced, so every contender reads the source from disk.  The import fsyncs
each blob and cp does not; the "+ sync" baseline figure shows what durability
costs the baseline.

    .venv/bin/python bench/bench_import.py [--size-mb 2000] [--files 200] [--dir /var/tmp]

Target: edgenode >= 1.0x the two-pass baseline; cp alone is the ceiling; peak
RSS bounded (the same at 200 MB and 2 GB).  Results: bench/out/import.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.imports.pipeline import import_bundle
cfg = load_config(env={}, overrides={"data_dir": sys.argv[2], "store__free_space_floor_mb": 0})
conn = open_main(cfg)
t = time.perf_counter()
r = import_bundle(cfg, conn, open_store(cfg), sys.argv[3], source="bench")
print(json.dumps({"seconds": time.perf_counter() - t, "result": r.result, "error": r.error,
                  "bytes": r.bytes_copied, "files": r.files_copied}))
"""


def drop_caches() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_payload(src: Path, size_mb: int, files: int) -> None:
    """Distinct PDF-shaped files: a unique head, a shared random body, a PDF trailer."""
    src.mkdir(parents=True)
    per = size_mb * 1024 * 1024 // files
    block = os.urandom(4 * 1024 * 1024)
    resources = []
    for i in range(files):
        name = f"doc{i:04d}.pdf"
        with open(src / name, "wb") as f:
            head = b"%PDF-1.4\n%" + hashlib.sha256(str(i).encode()).hexdigest().encode() + b"\n"
            f.write(head)
            left = per - len(head) - 7
            while left > 0:
                chunk = block[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
            f.write(b"\n%%EOF\n")
        resources.append({"id": f"doc{i:04d}", "path": name, "title": f"基准文档 {i}", "column": "pushi"})
    (src / "resources.json").write_text(json.dumps(resources, ensure_ascii=False), encoding="utf-8")


def timed(cmd: list[str] | str, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def run_import(data_dir: Path, bundle: Path) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO), str(data_dir), str(bundle)],
                            stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import child failed ({proc.returncode})")
    result = json.loads(out)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def measure(work: Path, size_mb: int, files: int) -> dict:
    from edgenode.protocol import minisign
    from edgenode.node.imports import trust
    from edgenode.protocol.build import build_bundle
    from edgenode.core.config import load_config
    from edgenode.core.db import open_main

    src = work / "src"
    make_payload(src, size_mb, files)
    sk = minisign.generate_keypair()
    bundle = build_bundle(src, "bench", 1, work / "out", secret_key=sk)  # hard links: no extra space
    shutil.rmtree(src)
    payload = bundle / "files"
    total = sum(p.stat().st_size for p in payload.iterdir())

    cold = drop_caches()
    t_cp_only = timed(["cp", "-r", str(payload), str(work / "cp-only")])
    shutil.rmtree(work / "cp-only")

    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(payload), str(work / "copy")], check=True)
    t_cp = time.perf_counter() - t0
    names = sorted(str(p) for p in (work / "copy").iterdir())
    subprocess.run(["sha256sum", *names], check=True, stdout=subprocess.DEVNULL)
    t_base = time.perf_counter() - t0
    subprocess.run(["sync"], check=True)
    t_base_sync = time.perf_counter() - t0
    shutil.rmtree(work / "copy")

    data = work / "node"
    cfg = load_config(env={}, overrides={"data_dir": str(data), "store__free_space_floor_mb": 0})
    conn = open_main(cfg)
    trust.add_key(conn, sk.public, ["bench"])
    conn.close()
    drop_caches()
    imp = run_import(data, bundle)
    assert imp["result"] == "imported" and imp["bytes"] == total, imp
    mb = total / 1e6
    return {
        "files": files, "bytes": total, "cold_cache": cold,
        "cp_only_s": round(t_cp_only, 2), "baseline_cp_part_s": round(t_cp, 2), "cp_then_sha256sum_s": round(t_base, 2),
        "cp_then_sha256sum_then_sync_s": round(t_base_sync, 2), "edgenode_import_s": round(imp["seconds"], 2),
        "MBps": {"cp_only": round(mb / t_cp_only), "baseline": round(mb / t_base), "edgenode": round(mb / imp["seconds"])},
        "ratio_vs_baseline": round(t_base / imp["seconds"], 2),
        "ratio_vs_baseline_with_sync": round(t_base_sync / imp["seconds"], 2),
        "ratio_vs_cp_ceiling": round(t_cp_only / imp["seconds"], 2),
        "import_peak_rss_mb": round(imp["peak_rss_mb"], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=2000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--dir", default="/var/tmp", help="Work directory (the data disk, not tmpfs).")
    args = ap.parse_args()
    free = shutil.disk_usage(args.dir).free / 1e6
    if free < args.size_mb * 3.2:
        raise SystemExit(f"need about {args.size_mb * 3.2:.0f} MB free in {args.dir}, have {free:.0f}")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="edgenode-bench-import-") as tmp:
        r = measure(Path(tmp), args.size_mb, args.files)
    print(f"import of {r['bytes'] / 1e9:.2f} GB in {r['files']} files "
          f"({'cold' if r['cold_cache'] else 'WARM'} page cache before each step)")
    print(f"  cp -r alone (ceiling)        {r['cp_only_s']:7.2f} s  {r['MBps']['cp_only']:5d} MB/s")
    print(f"  cp -r + sha256sum (baseline) {r['cp_then_sha256sum_s']:7.2f} s  {r['MBps']['baseline']:5d} MB/s"
          f"   (+ sync: {r['cp_then_sha256sum_then_sync_s']:.2f} s)")
    print(f"  edgenode import              {r['edgenode_import_s']:7.2f} s  {r['MBps']['edgenode']:5d} MB/s"
          f"   peak RSS {r['import_peak_rss_mb']} MB")
    print(f"  ratio vs baseline {r['ratio_vs_baseline']}x (target >= 1.0), vs baseline+sync "
          f"{r['ratio_vs_baseline_with_sync']}x, vs cp ceiling {r['ratio_vs_cp_ceiling']}x")
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "import.json").write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
