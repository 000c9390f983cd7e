"""Finding bundle directories under a stick, a spool or a staging root.

Only locating: nothing found here is trusted.  The manifest is peeked at, size
capped, solely to import a channel's bundles in sequence order.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from edgenode.protocol.bundle import MANIFEST, STICK_FOLDER, is_junk

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


def _order_key(bundle: Path, max_manifest: int):
    try:
        path = bundle / MANIFEST
        if path.lstat().st_size <= max_manifest:
            doc = json.loads(path.read_bytes())
            if isinstance(doc.get("channel"), str) and isinstance(doc.get("seq"), int):
                return (0, doc["channel"], doc["seq"], bundle.name)
    except (OSError, ValueError, AttributeError, RecursionError):
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
    return sorted(found, key=lambda b: _order_key(b, max_manifest))
