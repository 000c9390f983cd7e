"""Content fan-out (issue 17): the county's egress ÷ bytes published, and the time to full delivery, for
township mirrors against today's direct pull measured in the same run (the baseline).

The topology is network namespaces on one bridge (tests/helpers_topology.py): a county (its rsync daemon),
two township mirrors, and 1, 2 and 4 villages under each, every village on a tc-tbf-shaped link; then as
many villages pulling straight from the county.  Egress is read from the county's interface counters.
Needs root (network namespaces).

    .venv/bin/python bench/bench_fanout.py [--mb 20] [--mbit 8] [--per 1,2,4] [--townships 2]
    .venv/bin/python bench/bench_fanout.py --mb 200 --mbit 4 --per 4     # the acceptance's full size

Results: bench/out/fanout.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers_topology import run_topology  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=20, help="bundle size in MB (10 MB files)")
    ap.add_argument("--mbit", type=float, default=8, help="each village link, Mbit/s (tc tbf)")
    ap.add_argument("--per", default="1,2,4", help="villages per township, comma-separated")
    ap.add_argument("--townships", type=int, default=2)
    ap.add_argument("--dir", default="/var/tmp")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_fanout needs root (network namespaces)")
        return 2
    file_size = min(10_000_000, int(args.mb * 1_000_000))
    files = max(1, round(args.mb * 1_000_000 / file_size))
    rows = []
    for per in [int(x) for x in args.per.split(",")]:
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="i17-fanout-") as tmp:
            fig = run_topology(Path(tmp), townships=args.townships, per_township=per, files=files,
                               file_size=file_size, rate_mbit=args.mbit)
        rows.append({"per_township": per, **fig})
        m, d = fig["mirrored"], fig["direct"]
        print(f"{fig['villages']:2d} villages ({per}/township): county egress ÷ published {m['ratio']:.2f} with "
              f"mirrors vs {d['ratio']:.2f} direct ({m['egress'] / d['egress']:.2f}x of the baseline); "
              f"time to full delivery {m['seconds']:.1f} s vs {d['seconds']:.1f} s", flush=True)
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "fanout.json").write_text(json.dumps({"mb": args.mb, "mbit": args.mbit, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
