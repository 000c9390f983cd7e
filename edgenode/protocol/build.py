"""Building and signing bundles (the publisher's side; the hub calls these too)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

from edgenode.core import registry
from edgenode.protocol import minisign, strictjson
from edgenode.protocol.bundle import KEYLIST, MANIFEST, BundleError, check_path, is_junk, manifest_dict, parse_manifest
from edgenode.protocol.metadata import EXT_KIND
from edgenode.core.store import file_sha256

# Hook point: (src_dir) -> extra manifest sections read from the publisher's source folder, checked
# with the node's own rules so a county cannot publish what nodes would refuse.
SECTIONS_HOOK = "bundle.sections_from_source"

def _default_id(rel: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", rel.rsplit(".", 1)[0]).strip("-.")[:80]
    return stem or hashlib.sha256(rel.encode()).hexdigest()[:16]


def scan_source(src_dir: Path, resources: list[dict] | None, default_column: str) -> list[dict]:
    """Manifest entries (without size/hash) for the media files under ``src_dir``."""
    if resources is None and (src_dir / "resources.json").is_file():
        try:
            resources = strictjson.loads((src_dir / "resources.json").read_bytes())
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise BundleError("E_MANIFEST_INVALID", f"{src_dir}/resources.json: {str(e)[:80]}",
                              zh="resources.json 格式不正确") from None
    by_path = {r["path"]: dict(r) for r in resources or []}
    if resources is None:
        for path in sorted(src_dir.rglob("*")):
            rel = path.relative_to(src_dir).as_posix()
            if not path.is_file() or any(is_junk(part) for part in rel.split("/")):
                continue
            ext = path.suffix.lower().lstrip(".")
            if ext in EXT_KIND:
                by_path[rel] = {"path": rel}
    entries = []
    for rel, r in by_path.items():
        check_path(rel)
        ext = rel.rsplit(".", 1)[-1].lower()
        entries.append({
            "id": r.get("id") or _default_id(rel),
            "path": rel,
            "title": r.get("title") or Path(rel).stem,
            "description": r.get("description", ""),
            "column": r.get("column") or default_column,
            "tags": list(r.get("tags") or []),
            "kind": r.get("kind") or EXT_KIND.get(ext, ""),
            "language": r.get("language") or "zh",
            **{k: r[k] for k in ("series", "season", "episode") if r.get(k) is not None},
            **({"subtitles": [dict(t) for t in r["subtitles"]]} if r.get("subtitles") else {}),
        })
    if not entries:
        raise BundleError("E_BUILD_EMPTY", f"{src_dir}: no media files to publish", zh="没有可发布的文件")
    return entries


def _copy_in(src_dir: Path, files: Path, rel: str, link: bool) -> str:
    dest = files / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not link:
            raise OSError
        os.link(src_dir / rel, dest)
    except OSError:
        shutil.copyfile(src_dir / rel, dest)
    return rel


def _source_series(src_dir: Path) -> list:
    """The publisher's ``series.json``: a list of {id, title, description, column, tags} (docs/bundle-format.md)."""
    path = src_dir / "series.json"
    if not path.is_file():
        return []
    try:
        return strictjson.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BundleError("E_MANIFEST_INVALID", f"{path}: {str(e)[:80]}", zh="series.json 格式不正确") from None


def build_bundle(src_dir, channel: str, seq: int, out_dir, *, secret_key: minisign.SecretKey | None = None,
                 key_id: str | None = None, resources: list[dict] | None = None, withdraw=(),
                 expires: str | None = None, default_column: str = "pushi", prehash: bool = True,
                 link: bool = True) -> Path:
    """Write ``out_dir/<channel>-<seq>/`` with the payload under ``files/`` and a manifest.

    With ``secret_key`` the manifest is signed too; otherwise pass ``key_id`` and
    sign later (``edgenode bundle sign``).  ``link=True`` hard-links payload files
    when source and output share a filesystem.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    if secret_key is None and key_id is None:
        raise BundleError("E_BUILD_NO_KEY", "give a secret key to sign with, or the key id to name in the manifest",
                          zh="请指定签名密钥")
    entries = scan_source(src_dir, resources, default_column)
    bundle = out_dir / f"{channel}-{seq:08d}"
    tmp = out_dir / f".{bundle.name}.building"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "files").mkdir(parents=True)
    for e in entries:
        dest = tmp / "files" / _copy_in(src_dir, tmp / "files", e["path"], link)
        e["path"] = "files/" + e["path"]
        e["size"] = dest.stat().st_size
        e["sha256"] = file_sha256(dest)
        for sub in e.get("subtitles", ()):
            sub["path"] = "files/" + _copy_in(src_dir, tmp / "files", check_path(sub["path"]), link)
            sub["size"] = (tmp / sub["path"]).stat().st_size
            sub["sha256"] = file_sha256(tmp / sub["path"])
    kid = secret_key.key_id_hex if secret_key else key_id.upper()
    doc = manifest_dict(channel, seq, kid, entries, withdraw=withdraw, expires=expires,
                        series=_source_series(src_dir))
    for sections in registry.hooks(SECTIONS_HOOK):  # the node's activities: SRC/programme.json, checked
        doc.update(sections(src_dir))
    try:
        data = strictjson.dumps(doc, indent=1).encode("utf-8") + b"\n"
    except ValueError as e:  # NaN, Infinity or a lone surrogate from the source folder
        raise BundleError("E_MANIFEST_INVALID", f"manifest: {e}", zh="内容包清单格式不正确，未发布") from None
    parse_manifest(data)  # refuse to publish what a node would refuse
    (tmp / MANIFEST).write_bytes(data)
    if secret_key:
        sign_manifest(tmp, secret_key, prehash=prehash)
    if bundle.exists():
        shutil.rmtree(bundle)
    os.replace(tmp, bundle)
    return bundle


def sign_manifest(bundle_dir, secret_key: minisign.SecretKey, *, prehash: bool = True) -> Path:
    bundle_dir = Path(bundle_dir)
    data = (bundle_dir / MANIFEST).read_bytes()
    m = parse_manifest(data)
    if m.key_id != secret_key.key_id_hex:
        raise BundleError("E_SIG_INVALID", f"manifest names key {m.key_id}, not {secret_key.key_id_hex}",
                          zh="签名密钥与清单不符")
    comment = f"timestamp:{int(time.time())}\tfile:{MANIFEST}\tchannel:{m.channel}\tseq:{m.seq}"
    return minisign.sign_file(bundle_dir / MANIFEST, secret_key, trusted_comment=comment, prehash=prehash)


def write_keylist(path, secret_key: minisign.SecretKey, keys: list[tuple[minisign.PublicKey, list[str]]], *,
                  seq: int, revoke=(), prehash: bool = True) -> Path:
    """A rotation key list signed by ``secret_key`` (which the nodes trust now)."""
    path = Path(path)
    if path.is_dir():
        path = path / KEYLIST
    doc = {"format": 1, "type": "edgenode-keylist", "seq": seq,
           "keys": [{"public_key": pk.b64(), "channels": sorted(ch), "comment": ""} for pk, ch in keys],
           "revoke": [k.upper() for k in revoke]}
    path.write_text(strictjson.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return minisign.sign_file(path, secret_key, prehash=prehash)
