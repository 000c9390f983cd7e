"""Software releases: a signed folder holding one edgenode version and all it needs to install offline.

```
edgenode-<version>/
  release.json          what the release holds (strict JSON, signed)
  release.json.minisig  minisign signature by a release key (channel ``software`` only)
  wheel/edgenode-<version>-py3-none-any.whl
  requirements.lock     the pinned, hashed dependencies (requirements/node.lock)
  deps/*                one file per pin, the very file the lock's hash names: a wheel, or the
                        sdist where the project publishes no wheel (jieba), which pip builds offline
  debs/*.deb            Debian packages the version newly needs (points with no apt source)
```

A release travels like a content bundle (hub publish, rsync, spool, stick: under
``software/`` beside the bundles) but is never a content bundle: it is named by
``release.json``, so the content importer never sees it, and it verifies only with a
key whose sole channel is ``software`` (a content key, even the county's, is refused:
``E_RELEASE_KEY``).  docs/updates.md has the rules.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.core.store import file_sha256
from edgenode.protocol import minisign, strictjson
from edgenode.protocol.bundle import check_path

RELEASE = "release.json"
RELEASE_SIG = "release.json.minisig"
CHANNEL = "software"
FOLDER = "software"  # under a stick's edgenode-bundles/ and the hub's rsync channels/
MAX_RELEASE_JSON = 1024 * 1024
VERSION_RE = re.compile(r"^(0|[1-9][0-9]{0,5})(\.(0|[1-9][0-9]{0,5})){1,3}$")
LOCK_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
LOCK_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
FIELDS = {"format", "type", "version", "created", "key_id", "wheel", "requirements", "deps", "debs",
          "migrations", "notes"}


class ReleaseError(EdgenodeError):
    pass


@dataclass(frozen=True)
class Release:
    version: str
    key_id: str
    wheel: dict
    requirements: dict
    deps: list
    debs: list
    migrations: list
    sha256: str  # of release.json: what the node and the hub call this exact release

    @property
    def files(self) -> list[dict]:
        return [self.wheel, self.requirements, *self.deps, *self.debs]


def version_key(version: str) -> tuple[int, ...]:
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise ReleaseError("E_RELEASE_INVALID", f"version {str(version)[:40]!r}: use numbers like 1.4.2",
                           zh="软件版本号格式不正确")
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


def lock_pins(lock_text: str) -> list[tuple[str, str, set[str]]]:
    """``(name, version, {sha256, ...})`` for each pin of a pip-tools lock file."""
    out: list[tuple[str, str, set[str]]] = []
    for line in lock_text.splitlines():
        m = LOCK_PIN.match(line)
        if m:
            out.append((m.group(1).lower(), m.group(2), set()))
        elif out:
            out[-1][2].update(LOCK_HASH.findall(line))
    return out


def _entry(path: Path, rel: str) -> dict:
    return {"path": rel, "sha256": file_sha256(path), "size": path.stat().st_size}


def _pick_dep_files(lock_text: str, wheelhouse: Path) -> list[Path]:
    """For each pin, the file in ``wheelhouse`` whose hash the lock names (a missing one is an error): a wheel,
    or an sdist where the project publishes none; the lock carries the build tools pip needs for it."""
    by_hash = {file_sha256(p): p for p in sorted(wheelhouse.iterdir())
               if p.is_file() and p.name.endswith((".whl", ".tar.gz", ".zip"))}
    picked = []
    for name, version, hashes in lock_pins(lock_text):
        found = [by_hash[h] for h in sorted(hashes) if h in by_hash]
        if not found:
            raise ReleaseError("E_RELEASE_DEPS", f"{name}=={version}: no file in {wheelhouse} matches the lock's "
                               "hashes (pip download --require-hashes -r requirements/node.lock)",
                               zh="缺少依赖包")
        picked.append(found[0])
    return picked


def build_release(out_dir, secret_key: minisign.SecretKey, *, wheel, lock, wheelhouse, debs=(),
                  migrations=(), notes: str = "") -> Path:
    """Write ``out_dir/edgenode-<version>/`` and sign it; the version is read from the wheel's name."""
    wheel, lock, wheelhouse = Path(wheel), Path(lock), Path(wheelhouse)
    m = re.match(r"^edgenode-([0-9.]+)-py3-none-any\.whl$", wheel.name)
    if not m:
        raise ReleaseError("E_RELEASE_INVALID", f"{wheel.name}: not an edgenode wheel", zh="不是软件安装包")
    version = m.group(1)
    version_key(version)
    final = Path(out_dir) / f"edgenode-{version}"
    if final.exists():
        raise ReleaseError("E_RELEASE_EXISTS", f"{final} already exists", zh="这个版本已经打包过")
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for d in ("wheel", "deps", "debs"):
        (tmp / d).mkdir(parents=True)
    lock_text = lock.read_text(encoding="utf-8")
    shutil.copy2(wheel, tmp / "wheel" / wheel.name)
    shutil.copy2(lock, tmp / "requirements.lock")
    deps = []
    for p in _pick_dep_files(lock_text, wheelhouse):
        shutil.copy2(p, tmp / "deps" / p.name)
        deps.append(_entry(tmp / "deps" / p.name, f"deps/{p.name}"))
    deb_entries = []
    for p in map(Path, debs):
        shutil.copy2(p, tmp / "debs" / p.name)
        deb_entries.append(_entry(tmp / "debs" / p.name, f"debs/{p.name}"))
    doc = {"format": 1, "type": "edgenode-release", "version": version,
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "key_id": secret_key.key_id_hex,
           "wheel": _entry(tmp / "wheel" / wheel.name, f"wheel/{wheel.name}"),
           "requirements": _entry(tmp / "requirements.lock", "requirements.lock"),
           "deps": deps, "debs": deb_entries, "migrations": [list(x) for x in migrations], "notes": notes[:2000]}
    data = strictjson.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    (tmp / RELEASE).write_bytes(data)
    (tmp / RELEASE_SIG).write_text(minisign.sign_bytes(data, secret_key, trusted_comment=f"edgenode {version}"),
                                   encoding="utf-8")
    tmp.rename(final)
    return final


def _files(doc: dict) -> list[dict]:
    entries = [doc.get("wheel"), doc.get("requirements"), *(doc.get("deps") or []), *(doc.get("debs") or [])]
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("sha256"), str) or not isinstance(e.get("size"), int):
            raise ReleaseError("E_RELEASE_INVALID", "each file needs path, sha256 and size", zh="软件包清单格式不正确")
        check_path(e.get("path"))
    return entries


def parse(data: bytes, sha: str) -> Release:
    try:
        doc = strictjson.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReleaseError("E_RELEASE_INVALID", "release.json is not strict UTF-8 JSON",
                           zh="软件包清单格式不正确") from None
    if not isinstance(doc, dict) or doc.get("type") != "edgenode-release" or doc.get("format") != 1:
        raise ReleaseError("E_RELEASE_INVALID", "not an edgenode release (format 1)", zh="软件包清单格式不正确")
    unknown = set(doc) - FIELDS
    if unknown:
        raise ReleaseError("E_RELEASE_INVALID", f"unknown fields {sorted(unknown)}", zh="软件包清单格式不正确")
    version_key(doc.get("version"))
    _files(doc)
    if not isinstance(doc.get("deps"), list) or not isinstance(doc.get("debs"), list):
        raise ReleaseError("E_RELEASE_INVALID", "deps and debs must be lists", zh="软件包清单格式不正确")
    return Release(version=doc["version"], key_id=str(doc.get("key_id") or ""), wheel=doc["wheel"],
                   requirements=doc["requirements"], deps=doc["deps"], debs=doc["debs"],
                   migrations=doc.get("migrations") or [], sha256=sha)


def read_signed(release_dir: Path) -> tuple[bytes, str]:
    """The manifest's bytes and its signature text; an unsigned release is refused here."""
    release_dir = Path(release_dir)
    if not (release_dir / RELEASE).is_file() or (release_dir / RELEASE).is_symlink():
        raise ReleaseError("E_RELEASE_INVALID", f"{release_dir}: no release.json", zh="不是软件更新包")
    if not (release_dir / RELEASE_SIG).is_file():
        raise ReleaseError("E_RELEASE_UNSIGNED", f"{release_dir}: release.json.minisig is missing: unsigned "
                           "releases are never installed", zh="软件更新包没有签名，未安装")
    data = (release_dir / RELEASE).read_bytes()
    if len(data) > MAX_RELEASE_JSON:
        raise ReleaseError("E_RELEASE_INVALID", "release.json is too large", zh="软件包清单格式不正确")
    return data, (release_dir / RELEASE_SIG).read_text(encoding="utf-8", errors="replace")[:4096]


def verify(release_dir, keys: dict, channels_of, *, running: str | None = None, check_files: bool = True) -> Release:
    """Signature by a software-only key, the version newer than ``running``, every file's hash.

    ``keys``: trusted public keys by raw id; ``channels_of(key_id_hex) -> set`` the channels each
    may sign.  Codes: E_RELEASE_UNSIGNED, E_RELEASE_KEY (untrusted, or a content key),
    E_RELEASE_OLDER (not newer than the running version), E_RELEASE_HASH, E_RELEASE_INVALID.
    """
    release_dir = Path(release_dir)
    data, sig_text = read_signed(release_dir)
    try:
        sig = minisign.verify_bytes(data, sig_text, keys)
    except EdgenodeError as e:
        if e.code == "E_SIG_UNTRUSTED":
            raise ReleaseError("E_RELEASE_KEY", f"signed by a key this node does not trust for software: {e.message}",
                               zh="软件更新包的签名密钥不受信任，未安装") from None
        raise ReleaseError("E_RELEASE_SIGNATURE", f"the release signature does not verify: {e.message}",
                           zh="软件更新包签名无效，未安装") from None
    channels = channels_of(sig.key_id_hex)
    if channels != {CHANNEL}:
        raise ReleaseError("E_RELEASE_KEY", f"key {sig.key_id_hex} signs {sorted(channels)}: a release must be "
                           "signed by a release key (channel software only), never a content key",
                           zh="软件更新包不是用软件发布密钥签名的，未安装")
    rel = parse(data, hashlib.sha256(data).hexdigest())
    if rel.key_id and rel.key_id != sig.key_id_hex:
        raise ReleaseError("E_RELEASE_SIGNATURE", "release.json names another key than the one that signed it",
                           zh="软件更新包签名无效，未安装")
    if running is not None and version_key(rel.version) <= version_key(running):
        raise ReleaseError("E_RELEASE_OLDER", f"release {rel.version} is not newer than the running {running} "
                           "(going back is refused)", zh="这个软件版本不比本机的新，未安装")
    if check_files:
        for e in rel.files:
            p = release_dir / e["path"]
            if p.is_symlink() or not p.is_file() or p.stat().st_size != e["size"] or file_sha256(p) != e["sha256"]:
                raise ReleaseError("E_RELEASE_HASH", f"{e['path']}: missing or not the file the release names",
                                   zh="软件更新包不完整或被改动，未安装")
    return rel


def find_releases(root: Path) -> list[Path]:
    """Release folders under ``root``: itself, ``root/software/*`` or ``root/edgenode-bundles/software/*``."""
    root = Path(root)
    if (root / RELEASE).is_file():
        return [root]
    out: list[Path] = []
    for base in (root, root / FOLDER, *[c / FOLDER for c in _children(root) if c.name.lower() == "edgenode-bundles"]):
        for child in _children(base):
            if child.is_dir() and not child.is_symlink() and (child / RELEASE).is_file():
                out.append(child)
    return out


def _children(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []
