"""At a county hub: the release its province's rollout asks for, fetched, verified, rolled out here.

The answer to a county's report (hub/tiers.py) carries ``update: {version, rollout}`` while the
county's ring of the province's rollout is open.  The county then

1. fetches the release from the province over the same signed requests as its reports
   (``GET /api/v1/releases/<version>/<file>``): ``release.json`` and its signature first, checked
   against what **this county's nodes trust** for ``software`` (the county key's chain,
   keychain.software_trust: a content key, the county key, an unsigned or changed release is
   refused as a node refuses it), then each file it names, size and SHA-256 checked as it arrives;
   a file already here intact is not fetched again, so a broken link resumes;
2. publishes it in its own rsync tree for its nodes (hub/releases.publish);
3. starts its own rollout of that version to its nodes in ``hub.rollout_default_rings``.

A refused release is recorded as ``failed`` with its code and reported up with the next report;
an unreachable province is only retried (the offer comes again with the next answer).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.core.store import file_sha256
from edgenode.hub import keychain, releases, rollout, tier_software_queries as q
from edgenode.hub.registry import log_event
from edgenode.protocol import release as rel

CHUNK = 1 << 20
TRANSIENT = {"E_UPSTREAM_UNREACHABLE", "E_UPSTREAM_FETCH", "E_ROLLOUT_RUNNING"}


def _get(url: str, ident, path: str, dest: Path, max_bytes: int, timeout: float = 60.0) -> str:
    """Stream one signed GET into ``dest``; returns its SHA-256.  More than ``max_bytes`` is refused."""
    from edgenode.hub.signing import sign_headers
    req = urllib.request.Request(url + path, headers=sign_headers(ident, "GET", path, b"", int(time.time())))
    h, n = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            while chunk := resp.read(CHUNK):
                n += len(chunk)
                if n > max_bytes:
                    raise rel.ReleaseError("E_RELEASE_HASH", f"{path}: larger than the release names",
                                           zh="软件更新包不完整或被改动，未安装")
                h.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise EdgenodeError("E_UPSTREAM_FETCH", f"{path}: HTTP {e.code} from the upstream hub",
                            zh="从上级平台下载软件更新包失败。", status=502) from None
    except (urllib.error.URLError, OSError) as e:
        raise EdgenodeError("E_UPSTREAM_UNREACHABLE", f"upstream hub unreachable: {getattr(e, 'reason', e)}",
                            zh="上级平台无法连接。", status=502) from None
    return h.hexdigest()


def _intact(p: Path, e: dict) -> bool:
    return p.is_file() and not p.is_symlink() and p.stat().st_size == e["size"] and file_sha256(p) == e["sha256"]


def fetch(cfg, url: str, ident, version: str) -> Path:
    """The release, verified as this county's nodes would, in ``DATA_DIR/rsync/.fetch/edgenode-<version>``."""
    keys, channels_of = keychain.software_trust(cfg)
    work = cfg.data_path / "rsync" / ".fetch" / f"edgenode-{version}"
    work.mkdir(parents=True, exist_ok=True)
    base = f"/api/v1/releases/{urllib.parse.quote(version)}/"
    for name in (rel.RELEASE, rel.RELEASE_SIG):
        _get(url, ident, base + name, work / name, rel.MAX_RELEASE_JSON)
    found = rel.verify(work, keys, channels_of, check_files=False)  # the signer, before any large file
    if found.version != version:
        raise rel.ReleaseError("E_RELEASE_INVALID", f"asked for {version}, the release says {found.version}",
                               zh="软件更新包的版本与要求的不符")
    for e in found.files:
        p = work / e["path"]
        if _intact(p, e):
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        part = p.with_name(p.name + ".part")
        sha = _get(url, ident, base + urllib.parse.quote(e["path"]), part, e["size"])
        if sha != e["sha256"] or part.stat().st_size != e["size"]:
            part.unlink()
            raise rel.ReleaseError("E_RELEASE_HASH", f"{e['path']}: not the file the release names",
                                   zh="软件更新包不完整或被改动，未安装")
        part.replace(p)
    rel.verify(work, keys, channels_of)
    return work


def _ensure_published(cfg, url: str, ident, version: str) -> None:
    if version in releases.published(cfg):
        keys, channels_of = keychain.software_trust(cfg)  # came another way (a stick, staff): check it too
        rel.verify(releases.software_root(cfg) / f"edgenode-{version}", keys, channels_of)
        return
    work = fetch(cfg, url, ident, version)
    releases.publish(cfg, work)
    shutil.rmtree(work, ignore_errors=True)


def _parse_offer(offer) -> tuple[int, str] | None:
    if not isinstance(offer, dict):
        return None
    rid, version = offer.get("rollout"), offer.get("version")
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 < rid < 2 ** 53 or not isinstance(version, str):
        return None
    try:
        rel.version_key(version)
    except EdgenodeError:
        return None
    return rid, version


def on_offer(conn: sqlite3.Connection, cfg, url: str, ident, offer) -> dict:
    """Act on the province's ``update`` offer once; returns this county's upstream-rollout row as a dict."""
    parsed = _parse_offer(offer)
    if parsed is None:
        log_event(conn, "warning", "E_UPDATE_OFFER", None, f"upstream offer not understood: {str(offer)[:200]}")
        return {"state": "ignored", "code": "E_UPDATE_OFFER"}
    rid, version = parsed
    row = q.upstream_rollout(conn, rid)
    if row is not None and row["state"] in ("started", "failed", "done"):
        return dict(row)
    now = time.time()
    try:
        _ensure_published(cfg, url, ident, version)
        r = rollout.start(conn, version, list(cfg["hub.rollout_default_rings"]),
                          max_fail_share=cfg["hub.rollout_max_fail_share"], by=f"upstream:{rid}", upstream_id=rid)
        state, local_id, code, reason, zh = "started", r["id"], "", "", ""
    except EdgenodeError as e:
        local_id, code, reason, zh = None, e.code, e.message, e.zh
        # Nothing to update here is done; a passing problem is retried at the next offer; the rest is refused.
        state = "done" if e.code == "E_ROLLOUT_EMPTY" else "waiting" if e.code in TRANSIENT else "failed"
        log_event(conn, "warning", e.code, None, f"upstream rollout {rid} of {version}: {e.message}")
    with transaction(conn):
        q.set_upstream_rollout(conn, rid, version, state, now, code=code, reason=reason, reason_zh=zh,
                               local_id=local_id)
    return dict(q.upstream_rollout(conn, rid))


STATE_ZH = {"waiting": "等待开始（正在下载，或本县另一次更新尚未结束）", "failed": "已拒收", "started": "已在本县分批更新",
            "done": "本县没有服务点，无需更新"}


def upstream_requests(conn: sqlite3.Connection) -> list[dict]:
    """What the province's rollouts asked of this county, newest first (the 软件更新 page, ``rollout upstream``)."""
    return [{**dict(r), "state_zh": STATE_ZH.get(r["state"], r["state"])} for r in q.upstream_rollouts(conn)]
