"""`make bench`: every bench/bench_*.py in turn, each with its defaults; a summary of which ran.

Each benchmark prints its own figures as ratios against a baseline measured in the same run
and writes bench/out/<name>.json.  Some take minutes (bench_import moves 2 GB).  Run one
alone with ``.venv/bin/python bench/bench_<name>.py --help``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        rc = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        print(f"== {script.name}: exit {rc} in {time.monotonic() - started:.0f} s\n", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
