"""A long import against the portal's writes (issue 16): how long does usage recording wait?

The portal records a usage event per page view and play, in its own short transaction.  An
import holds the write lock only for its final commit.  This measures, in one run:

* baseline: a recorder process writing one event every 5 ms for a few seconds, alone;
* under load: the same recorder while another process imports a bundle of ``--entries``
  resources (one commit with every catalogue row, tag and FTS entry);

and prints the recorder's worst and 99th-percentile write latency in each, the ratio, the
import's commit time, and how many writes failed (``database is locked``) against
``db.busy_timeout_ms`` (default 10 s).

    .venv/bin/python bench/bench_busy.py [--entries 2000]

Target: no write fails, and the worst wait stays far below the busy timeout.
Results: bench/out/busy.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RECORDER = r"""
import json, sqlite3, sys, time
sys.path.insert(0, sys.argv[1])
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.node.usage.events import record
from pathlib import Path
cfg = load_config(env={}, overrides={"data_dir": sys.argv[2]})
conn = open_main(cfg)
stop_at, stop_file, waits, failed = time.monotonic() + float(sys.argv[3]), Path(sys.argv[4]), [], 0
while time.monotonic() < stop_at and not stop_file.exists():
    t = time.perf_counter()
    try:
        record(conn, [{"kind": "page_view", "terminal": "bench0000000000", "resource_id": "x"}])
    except sqlite3.OperationalError:
        failed += 1
    waits.append(time.perf_counter() - t)
    time.sleep(0.005)
print(json.dumps({"waits": waits, "failed": failed}))
"""

IMPORTER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.imports.pipeline import import_bundle
cfg = load_config(env={}, overrides={"data_dir": sys.argv[2], "store__free_space_floor_mb": 0})
conn = open_main(cfg)
phases = {}
def progress(p):
    phases.setdefault(p.phase, time.perf_counter())
t = time.perf_counter()
r = import_bundle(cfg, conn, open_store(cfg), sys.argv[3], source="bench", progress=progress)
end = time.perf_counter()
print(json.dumps({"seconds": end - t, "result": r.result, "error": r.error,
                  "commit_seconds": end - phases.get("commit", end)}))
"""


def _stats(waits: list[float]) -> dict:
    s = sorted(waits)
    return {"writes": len(s), "worst_ms": round(s[-1] * 1000, 2), "p99_ms": round(s[int(len(s) * 0.99)] * 1000, 2),
            "median_ms": round(s[len(s) // 2] * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    args = ap.parse_args()
    from edgenode.core.config import load_config
    from edgenode.core.db import open_main
    from tests.helpers_bundles import make_bundle, new_key, trust_key

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        cfg = load_config(env={}, overrides={"data_dir": str(data)})
        conn = open_main(cfg)
        sk = new_key(tmp)
        trust_key(conn, sk, "sannong")
        conn.close()
        bundle = make_bundle(tmp / "b", sk, seq=1, n=args.entries, size=2048)
        py = sys.executable

        stop = tmp / "stop"
        alone = subprocess.run([py, "-c", RECORDER, str(REPO), str(data), "4", str(stop)], capture_output=True,
                               text=True, check=True)
        base = json.loads(alone.stdout)
        # The recorder runs until the import is over (the stop file), at most 10 minutes.
        rec = subprocess.Popen([py, "-c", RECORDER, str(REPO), str(data), "600", str(stop)], stdout=subprocess.PIPE,
                               text=True)
        time.sleep(1.0)  # the recorder is writing before the import starts
        imp = subprocess.run([py, "-c", IMPORTER, str(REPO), str(data), str(bundle)], capture_output=True,
                             text=True, check=True)
        import_result = json.loads(imp.stdout)
        stop.touch()
        rec_out, _ = rec.communicate(timeout=60)
        loaded = json.loads(rec_out)

    out = {"entries": args.entries, "import": import_result, "alone": {**_stats(base["waits"]), "failed": base["failed"]},
           "during_import": {**_stats(loaded["waits"]), "failed": loaded["failed"]},
           "busy_timeout_ms": cfg["db.busy_timeout_ms"]}
    out["worst_ratio"] = round(out["during_import"]["worst_ms"] / max(out["alone"]["worst_ms"], 0.01), 1)
    (REPO / "bench" / "out").mkdir(exist_ok=True)
    (REPO / "bench" / "out" / "busy.json").write_text(json.dumps(out, indent=1))
    a, d = out["alone"], out["during_import"]
    print(f"import of {args.entries} resources: {import_result['seconds']:.2f} s "
          f"(commit {import_result['commit_seconds']:.2f} s), {import_result['result']}")
    print(f"usage writes alone:        worst {a['worst_ms']} ms, p99 {a['p99_ms']} ms, {a['writes']} writes, "
          f"{a['failed']} failed")
    print(f"usage writes during import: worst {d['worst_ms']} ms, p99 {d['p99_ms']} ms, {d['writes']} writes, "
          f"{d['failed']} failed")
    print(f"worst wait {out['worst_ratio']}x the baseline's; busy timeout {out['busy_timeout_ms']} ms "
          f"({d['worst_ms'] / out['busy_timeout_ms']:.1%} of it)")


if __name__ == "__main__":
    main()
