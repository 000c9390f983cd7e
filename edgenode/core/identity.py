"""The node's identity: a stable node id and an Ed25519 key pair.

Made once (at provisioning or first start) under DATA_DIR/identity/.  A cloned
disk image must get a new identity: `edgenode identity reset` (first boot).
Framework-free; the hub enrolment and upload signing use it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from edgenode.core.keyfile import write_once

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


@dataclass
class Identity:
    node_id: str
    key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def public_b64(self) -> str:
        from cryptography.hazmat.primitives import serialization

        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


def identity_dir(cfg) -> Path:
    return cfg.data_path / "identity"


def load_or_create(cfg) -> Identity:
    # cryptography here, not at the top: ~5 MB that processes needing only node_id() never load.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d = identity_dir(cfg)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    id_path, key_path = d / "node_id", d / "node.key"
    # write_once: two jobs starting together on a new node must not sign with different keys.
    if not key_path.exists():
        key = Ed25519PrivateKey.generate()
        write_once(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    if not id_path.exists():
        write_once(id_path, uuid.uuid4().hex.encode())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return Identity(id_path.read_text().strip(), key)


def node_id(cfg) -> str:
    """The node id alone, without loading the key (health pages in the web worker need only this)."""
    try:
        text = (identity_dir(cfg) / "node_id").read_text().strip()
    except FileNotFoundError:
        text = ""
    return text or load_or_create(cfg).node_id


def reset(cfg) -> Identity:
    """Forget the identity and make a new one (first boot of a cloned image)."""
    d = identity_dir(cfg)
    for name in ("node_id", "node.key"):
        p = d / name
        if p.exists():
            p.unlink()
    return load_or_create(cfg)
