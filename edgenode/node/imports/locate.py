"""Finding bundle directories under a stick, a spool or a staging root.

Only locating: nothing found here is trusted.  The manifest is peeked at, size
capped, solely to import a channel's bundles in sequence order.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from edgenode.protocol import strictjson
from edgenode.protocol.bundle import MANIFEST, STICK_FOLDER, is_junk


class NotSmallFile(Exception):
    """``read_small`` found something other than a regular file of at most ``cap`` bytes."""

    def __init__(self, why: str, too_large: bool = False):
        super().__init__(why)
        self.too_large = too_large


def read_small(path: Path, cap: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``cap`` bytes, never following a link.

    The type is checked on the open descriptor, not by a prior ``lstat``: a FIFO swapped in
    between would otherwise block the open for ever.  ``O_NONBLOCK`` makes opening a FIFO
    return at once; ``O_NOFOLLOW`` refuses a symlink (to ``/dev/zero`` or a 2 GB file).
    Raises FileNotFoundError, NotSmallFile, or OSError for I/O errors.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotSmallFile("a symlink, not a regular file") from None
        if e.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket
            raise NotSmallFile("a socket, not a regular file") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotSmallFile("not a regular file (device, FIFO, socket or directory)")
        if st.st_size > cap:
            raise NotSmallFile(f"{st.st_size} bytes; the limit is {cap}", too_large=True)
        data = f.read(cap + 1)
    if len(data) > cap:  # grew while being read
        raise NotSmallFile(f"larger than the limit of {cap} bytes", too_large=True)
    return data

def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def stick_folder(root: Path) -> Path | None:
    """The well-known top folder on a stick, matched ignoring case (FAT)."""
    try:
        for child in root.iterdir():
            if child.name.lower() == STICK_FOLDER and _is_real_dir(child):
                return child
    except OSError:
        return None
    return None


def order_key(bundle: Path, max_manifest: int = 4 * 1024 * 1024) -> tuple:
    """(0, channel, seq, name) for a bundle whose manifest can be peeked at, else (1, "", 0, name)."""
    try:
        doc = strictjson.loads(read_small(bundle / MANIFEST, max_manifest))
        if isinstance(doc.get("channel"), str) and isinstance(doc.get("seq"), int):
            return (0, doc["channel"], doc["seq"], bundle.name)
    except (OSError, NotSmallFile, ValueError, AttributeError, RecursionError):
        pass
    return (1, "", 0, bundle.name)


def find_bundles(root: Path, *, max_manifest: int = 4 * 1024 * 1024) -> list[Path]:
    """Bundle directories at ``root``, in its stick folder, or one level below it."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [root]
    base = stick_folder(root) or root
    found = []
    try:
        children = sorted(base.iterdir())
    except OSError:
        return []
    for child in children:
        if is_junk(child.name) or not _is_real_dir(child):
            continue
        if (child / MANIFEST).exists() or (child / MANIFEST).is_symlink():
            found.append(child)
    return sorted(found, key=lambda b: order_key(b, max_manifest))


KEYLISTS = "keylists"  # beside the bundles on a stick: the county's chain of signed key lists


def stick_keylists(root: Path, cap: int = 256 * 1024) -> list[dict]:
    """The key lists a stick carries (``edgenode-bundles/keylists/NNNNNN.json`` + ``.minisig``).

    Read as everything else on a stick: small regular files only.  Unreadable entries are
    left out; the chain then stops before them, which is safe.
    """
    base = stick_folder(Path(root)) or Path(root)
    folder = base / KEYLISTS
    if not _is_real_dir(folder):
        return []
    out = []
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return []
    for name in names:
        stem = name[:-len(".json")] if name.endswith(".json") else ""
        if not stem.isdigit() or len(stem) > 9:
            continue
        try:
            data = read_small(folder / name, cap).decode("utf-8")
            sig = read_small(folder / (name + ".minisig"), cap).decode("utf-8")
        except (OSError, NotSmallFile, UnicodeDecodeError):
            continue
        out.append({"seq": int(stem), "keylist": data, "signature": sig})
    return out
