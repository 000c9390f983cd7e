"""Provisioning helpers the installer, first boot and scheduler share.

* ``write_config``: merge settings into ``/etc/edgenode/edgenode.toml``; the
  result is validated with the real loader before it replaces the old file, so
  the installer can never leave a config that stops start-up.
* The pending enrolment: when the hub is unreachable at install time the
  installer leaves ``DATA_DIR/enroll-pending.json`` (hub URL and one-time code,
  mode 0600) and the scheduler retries with ``read_pending`` / ``clear_pending``.

Framework-free; ``edgenode provision ...`` and provisioning/*.sh call these.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from edgenode.core.config import BY_NAME, load_config
from edgenode.core.errors import ConfigError, EdgenodeError

PENDING_NAME = "enroll-pending.json"


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _nest(values: dict[str, Any]) -> dict:
    out: dict = {}
    for name, value in values.items():
        node = out
        *parents, last = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _merge(doc: dict, updates: dict) -> dict:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            _merge(doc[key], value)
        else:
            doc[key] = value
    return doc


def write_config(path: Path | str, values: dict[str, Any], *, mode: int = 0o640) -> bool:
    """Set ``values`` (dotted names) in the TOML file at ``path``, keeping its other keys.

    Returns False when the file already says exactly this (nothing written), so
    a re-run of the installer leaves the file untouched.  Unknown names and bad
    values are refused before anything is written.
    """
    path = Path(path)
    for name in values:
        if name not in BY_NAME:
            raise ConfigError(f"{path}: key {name!r}: unknown setting")
    old_bytes = path.read_bytes() if path.exists() else b""
    try:
        doc = tomllib.loads(old_bytes.decode("utf-8")) if old_bytes else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot update, not valid TOML: {e}") from None
    new_doc = _merge(json.loads(json.dumps(doc)), _nest(values))
    if old_bytes and new_doc == doc:
        return False
    header = "# edgenode configuration (docs/configuration.md). Written by provisioning/install.sh;\n" \
             "# edit freely: re-running the installer changes only the keys it is given.\n"
    body = tomli_w.dumps(new_doc)
    new_bytes = (header + body).encode() if not old_bytes else \
        (_leading_comments(old_bytes.decode()) + body).encode()
    if new_bytes == old_bytes:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    probe = path.with_name(f".{path.name}.check")
    probe.write_bytes(new_bytes)
    try:
        load_config(probe, env={})  # the loader the services use: same refusals
    except ConfigError as e:
        raise ConfigError(e.message.replace(str(probe), str(path))) from None
    finally:
        probe.unlink(missing_ok=True)
    _atomic_write(path, new_bytes, mode)
    return True


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def pending_path(cfg) -> Path:
    return cfg.data_path / PENDING_NAME


def write_pending(cfg, hub: str, code: str, reason: str = "") -> Path:
    """Record an enrolment to retry later (the code is a secret: 0600, never logged)."""
    if not hub.startswith(("http://", "https://")):
        raise EdgenodeError("E_HUB_URL", f"hub URL must start with http:// or https://, not {hub!r}")
    if not code.strip():
        raise EdgenodeError("E_ENROLL_CODE", "the enrolment code is empty")
    path = pending_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"hub": hub, "code": code.strip(), "since": time.time(), "reason": reason}
    _atomic_write(path, json.dumps(data, ensure_ascii=False).encode(), 0o600)
    return path


def read_pending(cfg) -> dict | None:
    """The enrolment still to do, or None.  A damaged marker is reported, not guessed at."""
    path = pending_path(cfg)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise EdgenodeError("E_PENDING_ENROLL", f"{path}: unreadable pending enrolment: {e}") from None
    if not isinstance(data, dict) or not data.get("hub") or not data.get("code"):
        raise EdgenodeError("E_PENDING_ENROLL", f"{path}: pending enrolment lacks hub or code")
    return data


def clear_pending(cfg) -> bool:
    path = pending_path(cfg)
    if path.exists():
        path.unlink()
        return True
    return False


# Refusals that a retry cannot cure: the marker is set aside for a technician.
_FINAL = ("E_ENROLL_CODE", "E_NODE_REVOKED", "E_NODE_EXISTS", "E_HUB_URL")


def retry_pending(cfg, conn) -> dict | None:
    """Try the pending enrolment once (a scheduler job, or `edgenode provision pending-enroll --retry`).

    Returns None when nothing is pending, else ``{"status": "enrolled" | "waiting" | "refused", ...}``.
    An unreachable hub leaves the marker for the next try; a refused code moves it
    to ``enroll-pending.refused`` so it is not retried forever.
    """
    from edgenode.node.sync.enroll import enroll

    pending = read_pending(cfg)
    if pending is None:
        return None
    try:
        result = enroll(cfg, conn, pending["hub"], pending["code"])
    except EdgenodeError as e:
        if e.code in _FINAL:
            pending_path(cfg).replace(pending_path(cfg).with_name("enroll-pending.refused"))
            return {"status": "refused", "hub": pending["hub"], "error": e.code, "message": e.message}
        return {"status": "waiting", "hub": pending["hub"], "error": e.code, "message": e.message}
    clear_pending(cfg)
    return {"status": "enrolled", **result}
