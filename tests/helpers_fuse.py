"""A failing USB stick: a read-only FUSE view of a folder whose reads of one file fail with EIO.

Run as ``python -m tests.helpers_fuse ROOT MOUNTPOINT FILE_NAME OFFSET``: reads of FILE_NAME that
reach past OFFSET bytes get EIO, as from a worn stick's bad sector; everything else passes
through.  Device-mapper's error target is not in this machine's kernel; FUSE is (mfusepy).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path


def _operations():
    import mfusepy as fuse

    class FailingPassthrough(fuse.Operations):
        use_ns = True

        def __init__(self, root: str, fail_name: str, fail_at: int):
            self.root, self.fail_name, self.fail_at = root, fail_name, fail_at

        def _p(self, path: str) -> str:
            return os.path.join(self.root, path.lstrip("/"))

        def getattr(self, path, fh=None):
            st = os.lstat(self._p(path))
            return {**{k: getattr(st, k) for k in ("st_mode", "st_size", "st_nlink", "st_uid", "st_gid")},
                    "st_atime": st.st_atime_ns, "st_mtime": st.st_mtime_ns, "st_ctime": st.st_ctime_ns}

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(self._p(path))]

        def open(self, path, flags):
            return os.open(self._p(path), os.O_RDONLY)

        def read(self, path, size, offset, fh):
            if os.path.basename(path) == self.fail_name and offset + size > self.fail_at:
                raise fuse.FuseOSError(errno.EIO)
            return os.pread(fh, size, offset)

        def release(self, path, fh):
            os.close(fh)
            return 0

    return fuse, FailingPassthrough


class FailingStick:
    """Mount the view in a child process; ``with`` unmounts it."""

    def __init__(self, root: Path, mountpoint: Path, fail_name: str, fail_at: int):
        self.mountpoint = Path(mountpoint)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.helpers_fuse", str(root), str(mountpoint),
                                      fail_name, str(fail_at)], cwd=Path(__file__).resolve().parent.parent,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"FUSE mount failed: {self.proc.stderr.read().decode()[-400:] if self.proc.stderr else ''}")
            time.sleep(0.05)

    def __enter__(self) -> Path:
        return self.mountpoint

    def __exit__(self, *exc) -> None:
        subprocess.run(["umount", "-l", str(self.mountpoint)], check=False, capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def available() -> str | None:
    """Why a FUSE stick cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root to mount FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    try:
        _operations()
    except (ImportError, OSError) as e:
        return f"mfusepy/libfuse3 unavailable: {e}"
    return None


if __name__ == "__main__":
    root, mnt, name, at = sys.argv[1:5]
    fuse, ops = _operations()
    fuse.FUSE(ops(root, name, int(at)), mnt, foreground=True, ro=True, nothreads=True, allow_other=False)
