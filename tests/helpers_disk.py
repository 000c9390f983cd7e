"""A disk whose power can be cut: a loop-mounted ext4 image that loses whatever had not reached it.

    disk = CutDisk(work, mountpoint)   # ext4 on a loop device, mounted at ``mountpoint``
    ...                                  # the node runs on it; kill every process of the node, then
    disk.cut()                           # the power cut: only what the "disk" holds survives
    disk.close()

The ext4 image lives in an XFS image made with ``-m reflink=1`` (the host's ext4 cannot clone).
``cut`` clones the image (``cp --reflink=always``; XFS's FICLONE writes the source's dirty pages
out and holds its inode lock while it shares the extents, so the clone is the backing file at one
instant: every write the inner loop device completed before it, none after).  The old mount is
then dropped (its late writeback lands in the old image, which is thrown away) and the clone is
mounted at the same path, so ext4 replays its journal as after a real power cut.  What was only
in the inner ext4's page cache (written but never fsynced) is lost, as it would be.

Why this is a disk a real one could be, never a kinder or a crueller one:
* the inner ext4 is mounted with its defaults made explicit (``data=ordered``, ``barrier=1``,
  ``commit=5``, no ``journal_async_commit``): jbd2 waits for the journal blocks to complete
  before it writes the commit block, and the clone holds every completed write, so a commit
  record is never in the clone without its blocks;
* background writeback keeps running between the SIGKILLs and the clone; that is a node whose
  processes have died a moment before the power went, a state a real node goes through too;
* a request of the loop device reaches the backing file as one write or a few (one per segment,
  depending on the kernel), each under the inode lock the clone also takes: the clone holds each
  of those whole or not at all, and may hold part of a request, as a real disk may keep part of a
  multi-sector write (it promises only a sector);
* completed writes that no flush covered survive here, while a disk with a volatile write cache
  may drop them: this catches a missing fsync (data left in the page cache), not a disk that lies
  about flushes.

Needs root, loop devices and mkfs.xfs (xfsprogs).  Names carry ``u22node`` and the pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

PREFIX = f"u22node-{os.getpid()}"
EXT4_OPTIONS = "data=ordered,barrier=1,commit=5"


def why_not() -> str | None:
    """The reason this machine cannot cut a disk's power, or None."""
    if os.geteuid() != 0:
        return "a power cut by remounting needs root (loop devices, mount)"
    if shutil.which("mkfs.xfs") is None:
        return "mkfs.xfs missing: apt-get install xfsprogs (provisioning/dev-packages.txt)"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control)"
    fs = Path("/proc/filesystems").read_text()
    if "xfs" not in fs or "ext4" not in fs:
        return "the kernel lacks xfs or ext4"
    return None


def _run(*argv: str) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if res.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip() or res.stdout.strip()}")
    return res.stdout.strip()


def _umount(path: Path) -> None:
    """Unmount, waiting a little for the last killed process to let go; lazily if it will not."""
    for _ in range(25):
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class CutDisk:
    def __init__(self, work: Path, mountpoint: Path, size: str = "3G"):
        self.work, self.mountpoint = Path(work), Path(mountpoint)
        self.outer_dir = self.work / f"{PREFIX}-outer"
        self.outer_img = self.work / f"{PREFIX}-outer.img"
        self.outer_loop = self.inner_loop = None
        self.cuts = 0
        self.work.mkdir(parents=True, exist_ok=True)
        self.outer_dir.mkdir()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        _run("truncate", "-s", "8G", str(self.outer_img))
        _run("mkfs.xfs", "-q", "-m", "reflink=1", str(self.outer_img))
        self.outer_loop = _run("losetup", "-f", "--show", str(self.outer_img))
        _run("mount", self.outer_loop, str(self.outer_dir))
        self.image = self.outer_dir / f"{PREFIX}-node-0.img"
        _run("truncate", "-s", size, str(self.image))
        _run("mkfs.ext4", "-q", "-F", "-L", "u22node", str(self.image))
        self._mount()

    def _mount(self) -> None:
        self.inner_loop = _run("losetup", "-f", "--show", str(self.image))
        _run("mount", "-t", "ext4", "-o", EXT4_OPTIONS, self.inner_loop, str(self.mountpoint))

    def _drop(self) -> None:
        _umount(self.mountpoint)
        subprocess.run(["losetup", "-d", self.inner_loop], capture_output=True)
        self.inner_loop = None

    def cut(self) -> None:
        """The power goes: call it once every process using the disk has been SIGKILLed."""
        self.cuts += 1
        clone = self.outer_dir / f"{PREFIX}-node-{self.cuts}.img"
        _run("cp", "--reflink=always", str(self.image), str(clone))  # the disk at this instant
        self._drop()
        self.image.unlink()
        self.image = clone
        self._mount()  # "power on": ext4 replays its journal

    def close(self) -> None:
        if self.inner_loop:
            self._drop()
        if self.outer_loop:
            _umount(self.outer_dir)
            subprocess.run(["losetup", "-d", self.outer_loop], capture_output=True)
            self.outer_loop = None
        self.outer_img.unlink(missing_ok=True)
