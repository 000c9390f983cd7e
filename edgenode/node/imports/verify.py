"""Checking a bundle without importing it (``edgenode bundle verify``, the publisher's last look)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgenode.protocol import minisign
from edgenode.node.imports import trust
from edgenode.protocol.bundle import MANIFEST, SIGNATURE, BundleError, parse_manifest
from edgenode.node.imports.pipeline import _read_capped, open_payload

CHUNK = 1024 * 1024


def verify_bundle(bundle_dir: Path, *, conn=None, pubkey=None, max_manifest: int = 4 * 1024 * 1024) -> dict:
    """Signature (against ``pubkey`` or the trust store), manifest, and every file's size and hash."""
    data = _read_capped(bundle_dir / MANIFEST, max_manifest, "E_NO_MANIFEST", "manifest")
    sig_text = _read_capped(bundle_dir / SIGNATURE, minisign.MAX_SIG_FILE, "E_SIG_MISSING", "signature")
    keys = minisign.load_public_key(pubkey) if pubkey else trust.public_keys(conn)
    sig = minisign.verify_bytes(data, sig_text.decode("utf-8", "replace"), keys)
    m = parse_manifest(data, max_bytes=max_manifest)
    if m.key_id != sig.key_id_hex:
        raise BundleError("E_SIG_INVALID", f"manifest names key {m.key_id} but is signed by {sig.key_id_hex}")
    if conn is not None:
        trust.require_channel(conn, sig.key_id_hex, m.channel)
    for e in m.entries:
        fd = open_payload(bundle_dir, e.path)
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
        if size != e.size:
            raise BundleError("E_SIZE_MISMATCH", f"{e.path}: {size} bytes, the manifest says {e.size}")
        if h.hexdigest() != e.sha256:
            raise BundleError("E_HASH_MISMATCH", f"{e.path}: SHA-256 does not match the manifest")
    return {"channel": m.channel, "seq": m.seq, "resources": len(m.entries), "bytes": m.total_bytes,
            "withdraw": m.withdraw, "key_id": sig.key_id_hex,
            "algorithm": "prehashed" if sig.algorithm == minisign.PREHASHED else "legacy",
            "trusted_comment": sig.trusted_comment,
            "warnings": [f"W_EXPIRED: expired at {m.expires}"] if m.expired() else []}
