"""Random secrets kept in a file under the data directory, made once.

Used for the portal's session key, the hub's session key, the pickup-code
HMAC key and the node's identity (``write_once``).  Several processes may start together (gunicorn workers, the CLI, the
scheduler's jobs) and the machine may lose power at any moment, so a key file
must never be seen half-written and two processes must never keep different
keys.  The key is written to a temporary file, fsynced, then hard-linked to its
name: the name appears only with its whole content, and exactly one of two
racing links succeeds; the loser reads the winner's key.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
import tempfile
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.core.store import fsync_dir

log = logging.getLogger(__name__)


def read_or_create(path: Path | str, *, nbytes: int = 32, replace_damaged: bool = False) -> str:
    """The hex key in ``path``, made if missing.

    A file that is not ``2 * nbytes`` hex characters (damaged, or a torn write by
    an older version) raises ``E_KEY_DAMAGED``; with ``replace_damaged`` (keys whose
    loss costs only sign-ins) it is replaced by a new key and a warning is logged.
    """
    path = Path(path)
    text = _read(path)
    if text is None:
        _create(path, secrets.token_hex(nbytes), link=True)
        text = _read(path)
    if text is not None and _valid(text, nbytes):
        return text
    if not replace_damaged:
        raise EdgenodeError("E_KEY_DAMAGED", f"{path}: the key file is damaged; restore it from a backup",
                            zh="密钥文件已损坏，请从备份恢复。", status=500)
    log.warning("W_KEY_REPLACED: %s was damaged; made a new key (everyone signed in must sign in again)", path)
    _create(path, secrets.token_hex(nbytes), link=False)
    return _read(path) or ""


def write_once(path: Path | str, data: bytes) -> bool:
    """Give ``path`` the content ``data`` unless it exists; False when another process made it first."""
    return _create(Path(path), data, link=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None


def _valid(text: str, nbytes: int) -> bool:
    return len(text) == 2 * nbytes and all(c in string.hexdigits for c in text)


def _create(path: Path, data: str | bytes, *, link: bool) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if link:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False  # another process made it first: keep theirs
        else:
            os.replace(tmp, path)
            tmp = None
        fsync_dir(path.parent)
        return True
    finally:
        if tmp is not None:
            os.unlink(tmp)
