"""Shared helpers for the bundle, import and source tests: keys, payload files, bundles."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from edgenode.protocol import minisign
from edgenode.node.imports import trust
from edgenode.protocol.build import build_bundle
from edgenode.protocol.bundle import MANIFEST


def make_pdf(path: Path, size: int, seed: int = 0) -> Path:
    """A file our PDF check accepts (header and trailer), padded with seeded bytes to ``size``."""
    head, tail = b"%PDF-1.4\n", b"\n%%EOF\n"
    body = hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + body[: max(0, size - len(head) - len(tail))] + tail)
    return path


def make_source(root: Path, n: int = 3, size: int = 4096, seed: int = 0, column: str = "sannong") -> Path:
    """A publisher's source folder with ``n`` PDFs and a resources.json."""
    root.mkdir(parents=True, exist_ok=True)
    resources = []
    for i in range(n):
        make_pdf(root / f"doc{i:03d}.pdf", size, seed * 1000 + i)
        resources.append({"id": f"doc{i:03d}", "path": f"doc{i:03d}.pdf", "title": f"农技资料 {i}",
                          "column": column, "tags": ["水稻"], "description": "测试"})
    (root / "resources.json").write_text(json.dumps(resources, ensure_ascii=False), encoding="utf-8")
    return root


def new_key(tmp: Path, name: str = "pub") -> minisign.SecretKey:
    sk = minisign.generate_keypair()
    minisign.write_secret_key(sk, tmp / f"{name}.key")
    minisign.write_public_key(sk.public, tmp / f"{name}.pub")
    return sk


def trust_key(conn, sk: minisign.SecretKey, *channels: str) -> None:
    trust.add_key(conn, sk.public, channels or ("sannong",))


def make_bundle(tmp: Path, sk, channel: str = "sannong", seq: int = 1, n: int = 3, size: int = 4096,
                seed: int = 0, **kw) -> Path:
    src = make_source(tmp / f"src-{channel}-{seq}-{seed}", n=n, size=size, seed=seed)
    return build_bundle(src, channel, seq, tmp / "out", secret_key=sk, **kw)


def rewrite_manifest(bundle: Path, sk, edit) -> dict:
    """Change the manifest with ``edit(doc)`` and re-sign it (a hostile but validly signed bundle)."""
    doc = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    edit(doc)
    (bundle / MANIFEST).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    if sk is not None:
        minisign.sign_file(bundle / MANIFEST, sk)
    return doc


def resign_raw(bundle: Path, sk, data: bytes) -> None:
    (bundle / MANIFEST).write_bytes(data)
    minisign.sign_file(bundle / MANIFEST, sk)


def snapshot(conn, store) -> tuple:
    """Everything an import may change: catalogue rows, trust state, and store files (incl. staging)."""
    rows = tuple(tuple(r) for r in conn.execute(
        "SELECT id, visible, sha256, withdrawn_at FROM resources ORDER BY id"))
    blobs = tuple(tuple(r) for r in conn.execute("SELECT sha256, state FROM blobs ORDER BY sha256"))
    chans = tuple(tuple(r) for r in conn.execute("SELECT channel, seq FROM channel_state ORDER BY channel"))
    files = []
    for dirpath, _, names in os.walk(store.root):
        files += [os.path.join(dirpath, n) for n in names]
    return rows, blobs, chans, tuple(sorted(files))


def check_consistent(conn, store) -> None:
    """Every visible resource's blobs exist and hash correctly; nothing is half-visible."""
    for (rid,) in conn.execute("SELECT id FROM resources WHERE visible = 1"):
        shas = [r[0] for r in conn.execute(
            "SELECT rb.sha256 FROM resource_blobs rb JOIN resources r ON r.num = rb.resource_num WHERE r.id = ?",
            (rid,))]
        assert shas, rid
        for sha in shas:
            path = store.path_for(sha)
            assert path.is_file(), (rid, sha)
            assert store.hash_file(path) == sha, (rid, sha)
    hidden = conn.execute("SELECT count(*) FROM resources WHERE visible = 0 AND withdrawn_at IS NULL").fetchone()[0]
    assert hidden == 0, "a resource is in the catalogue but not visible (half-imported)"
