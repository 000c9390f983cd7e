"""What provisioning costs a node (issue 8), as ratios against baselines from the same run.

* Upgrade downtime is dominated by the database backup taken while the services are
  stopped: ``backup.backup_db`` (SQLite online backup + quick_check + fsync) of an
  N-MB database vs. a plain ``shutil.copyfile`` + fsync of the same file.
* The installer: a second run on an installed node (what a technician's re-run or
  ``edgenode-setup`` costs) vs. the first run, both in an overlay chroot of this
  machine (as tests/test_provisioning.py), with the same wheel and wheelhouse.

    sudo .venv/bin/python bench/bench_appliance.py [--db-mb 200] [--no-install]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from edgenode.core import backup  # noqa: E402


def make_db(path: Path, mb: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE usage (seq INTEGER PRIMARY KEY, at REAL, terminal TEXT, data TEXT)")
    row = os.urandom(400).hex()
    n = mb * 1024 * 1024 // 900
    with conn:
        conn.executemany("INSERT INTO usage (at, terminal, data) VALUES (?, ?, ?)",
                         ((i * 1.5, f"t{i % 500}", row) for i in range(n)))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def best_of(fn, runs=3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_backup(mb: int) -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        d = Path(d)
        db = d / "edgenode.db"
        make_db(db, mb)
        size = db.stat().st_size / 1e6

        def plain_copy():
            dest = d / "copy.db"
            shutil.copyfile(db, dest)
            with open(dest, "rb") as f:
                os.fsync(f.fileno())
            dest.unlink()

        def online_backup():
            p = backup.backup_db(db, d / "backups")
            p.unlink()

        base = best_of(plain_copy)
        ours = best_of(online_backup)
        print(f"backup of a {size:.0f} MB database: copy+fsync {base:.2f} s, "
              f"backup_db {ours:.2f} s  -> {ours / base:.2f}x the plain copy ({size / ours:.0f} MB/s)")


def bench_install() -> None:
    from tests import helpers_provisioning as hp

    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        d = Path(d)
        wheel = hp.build_edgenode_wheel(d / "dist")
        with hp.Root(Path("/"), d / "r") as root:
            opts = hp.prepare(root, wheel, hp.wheelhouse())
            t = time.perf_counter()
            root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
            first = time.perf_counter() - t
            t = time.perf_counter()
            root.run(hp.INSTALLER, *hp.INSTALL_ARGS, *opts)
            second = time.perf_counter() - t
    print(f"installer in a chroot: first run {first:.1f} s, re-run on the installed node {second:.1f} s "
          f"-> re-run is {second / first:.2f}x the first")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-mb", type=int, default=200)
    ap.add_argument("--no-install", action="store_true", help="skip the installer figures (they need root)")
    args = ap.parse_args()
    bench_backup(args.db_mb)
    if not args.no_install and os.geteuid() == 0:
        bench_install()


if __name__ == "__main__":
    main()
