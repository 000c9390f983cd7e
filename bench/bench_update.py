"""Time from commit to running, and the portal's downtime, for one software update (issue 22).

A real node (release venvs, nginx, gunicorn, scheduler under tests/node_supervisor.py) at
version N takes N+1 (same source, version bumped) with ``edgenode update apply``.  Measured:

* **commit to running**: from ``update apply`` starting (the release already staged: download
  excluded) until the gate passed, split into building the release directory and the switch;
* **portal downtime**: the longest run of failed ``GET /`` through nginx, polled every 50 ms;
* the **baseline**, measured in the same run: a plain restart of the portal and scheduler
  (``stop_command`` then ``start_command``), the floor any update pays.

    .venv/bin/python bench/bench_update.py

Target: downtime <= 10 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgenode.protocol.release import build_release  # noqa: E402
from tests import helpers_provisioning as hp  # noqa: E402
from tests.helpers_sync import free_port  # noqa: E402
from tests.helpers_updates import NodeUnderTest, bumped_wheel, keys  # noqa: E402


def downtime_during(node, action) -> tuple[float, float]:
    """(seconds the action took, longest stretch the portal did not answer 200)."""
    stop, worst, down_since = threading.Event(), [0.0], [None]

    def poll():
        while not stop.is_set():
            ok = node.portal_status() == 200
            now = time.monotonic()
            if ok and down_since[0] is not None:
                worst[0] = max(worst[0], now - down_since[0])
                down_since[0] = None
            elif not ok and down_since[0] is None:
                down_since[0] = now
            time.sleep(0.05)

    t = threading.Thread(target=poll)
    t.start()
    start = time.monotonic()
    action()
    took = time.monotonic() - start
    node.wait_portal(60)
    time.sleep(0.3)
    stop.set()
    t.join()
    return took, worst[0]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="i22-bench-"))
    k = keys(work / "keys")
    lock, wheelhouse = hp.REPO / "requirements" / "node.lock", hp.wheelhouse()
    wheel_n = hp.build_edgenode_wheel(work / "wn")
    rel_n = build_release(work / "out", k["release"], wheel=wheel_n, lock=lock, wheelhouse=wheelhouse)
    rel_n1 = build_release(work / "out", k["release"], lock=lock, wheelhouse=wheelhouse,
                           wheel=bumped_wheel(wheel_n, "0.1.1", work / "wn1"))
    node = NodeUnderTest(work / "node", free_port(), work / "keys" / "release.pub")
    try:
        node.install(rel_n)
        node.boot()
        ctl = [sys.executable, str(hp.REPO / "tests" / "node_supervisor.py"), "ctl", str(node.sock)]
        base_took, base_down = downtime_during(node, lambda: (subprocess.run(ctl + ["stop"]),
                                                              subprocess.run(ctl + ["start"])))
        node.edgenode("update", "stage", str(rel_n1))
        out = {}
        took, down = downtime_during(node, lambda: out.update(json.loads(
            node.edgenode("update", "apply", "--json", check=False).stdout)))
        print(f"update 0.1.0 -> 0.1.1: {out.get('state')}")
        print(f"commit to running (staged, download excluded): {took:.1f} s")
        print(f"portal downtime during the update: {down:.2f} s (target <= 10 s); "
              f"updater's own count from stop to gate passed: {out.get('seconds_down')} s")
        print(f"baseline, plain restart of portal + scheduler: {base_down:.2f} s down ({base_took:.1f} s)")
        print(f"ratio update downtime / plain restart: {down / base_down if base_down else float('nan'):.2f}")
    finally:
        node.power_cut()


if __name__ == "__main__":
    main()
