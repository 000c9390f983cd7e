"""The health gate after a switch: the new release is kept only when all four checks pass in time.

1. the portal answers through nginx (``updates.portal_url``: 200);
2. the database passes ``PRAGMA quick_check``;
3. the scheduler runs: the new scheduler writes ``updates/scheduler-alive`` with its version
   (``jobs.alive``, run at its start), newer than the moment the services were started;
4. media plays: the first visible video or audio file is fetched through nginx with a Range
   request and its bytes match the store (a node with no media yet passes this check).
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request

from edgenode.core.db import connect, quick_check
from edgenode.core.errors import EdgenodeError
from edgenode.node.catalog import queries as catalog
from edgenode.node.updates import state

ALIVE = "scheduler-alive"
PROBE_BYTES = 4096


def _get(url: str, headers: dict | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(PROBE_BYTES + 1)
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(str(e)) from None


def portal(cfg, version: str, since: float) -> str | None:
    try:
        status, _ = _get(cfg["updates.portal_url"])
    except ConnectionError as e:
        return f"portal does not answer through nginx: {e}"
    return None if status == 200 else f"portal answers {status} through nginx"


def database(cfg, version: str, since: float) -> str | None:
    conn = connect(cfg.db_path, readonly=True)
    try:
        quick_check(conn, cfg.db_path)
    except (EdgenodeError, sqlite3.Error) as e:
        return f"database check failed: {e}"
    finally:
        conn.close()
    return None


def scheduler(cfg, version: str, since: float) -> str | None:
    try:
        doc = json.loads((state.root(cfg) / ALIVE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "the scheduler has not started"
    if doc.get("version") != version or float(doc.get("at", 0)) < since:
        return f"the scheduler of {version} has not started (last seen: {doc.get('version')})"
    return None


def media(cfg, version: str, since: float) -> str | None:
    conn = connect(cfg.db_path, readonly=True)
    try:
        rows = [r for kind in ("video", "audio") for r in catalog.browse(conn, kind=kind, page_size=1).items]
    finally:
        conn.close()
    if not rows:
        return None
    res = rows[0]
    name = f"{res['sha256']}.{res['ext']}" if res["ext"] else res["sha256"]
    url = cfg["updates.portal_url"].rstrip("/") + f"/media/{name}"
    try:
        status, body = _get(url, {"Range": f"bytes=0-{PROBE_BYTES - 1}"})
    except ConnectionError as e:
        return f"media does not play: {e}"
    blob = cfg.data_path / "store" / res["sha256"][:2] / res["sha256"][2:4] / res["sha256"]
    try:
        with open(blob, "rb") as f:
            expected = f.read(PROBE_BYTES)
    except OSError:
        expected = None
    if status not in (200, 206) or (expected is not None and body[:len(expected)] != expected):
        return f"media does not play: {url} answered {status}"
    return None


CHECKS = (("portal", portal), ("database", database), ("scheduler", scheduler), ("media", media))


def run(cfg, version: str, since: float, *, deadline_seconds: float | None = None) -> tuple[bool, str, dict]:
    """(passed, reason of the first failing check, per-check result), retrying until the deadline."""
    deadline = time.monotonic() + (deadline_seconds or cfg["updates.gate_seconds"])
    results: dict[str, str | None] = {name: "not run" for name, _ in CHECKS}
    while True:
        for name, check in CHECKS:
            if results[name] is None:
                continue
            try:
                results[name] = check(cfg, version, since)
            except Exception as e:  # a check that crashes is a failed check, never a crashed updater
                results[name] = f"{type(e).__name__}: {e}"
        failing = [f"{n}: {r}" for n, r in results.items() if r is not None]
        if not failing:
            return True, "", {n: "ok" for n in results}
        if time.monotonic() >= deadline:
            return False, "; ".join(failing), {n: r or "ok" for n, r in results.items()}
        time.sleep(0.5)
