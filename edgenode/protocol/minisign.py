"""minisign-compatible Ed25519 keys and signatures (legacy ``Ed`` and prehashed ``ED``).

Only the file formats are reimplemented here; the cryptography is
``cryptography``'s Ed25519 and ``hashlib``'s BLAKE2b.  Interoperability with the
stock ``minisign`` tool is proved by ``tests/test_bundles_minisign.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgenode.core.errors import EdgenodeError

# cryptography is imported where keys are used, not here: listing trusted keys (the admin
# imports page, in the web worker) needs only this module's file formats, and the library
# would stay in the worker's memory for good (~5 MB; tests/test_process_footprint.py).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

LEGACY, PREHASHED = b"Ed", b"ED"
MAX_SIG_FILE = 4096


class SignatureError(EdgenodeError):
    def __init__(self, code: str, message: str, zh: str = "签名校验失败，内容未导入"):
        super().__init__(code, message, zh=zh)


def key_id_hex(key_id: bytes) -> str:
    """minisign shows the 8-byte id as a little-endian number."""
    return key_id[::-1].hex().upper()


@dataclass(frozen=True)
class PublicKey:
    key_id: bytes
    raw: bytes  # 32 bytes

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    def b64(self) -> str:
        return base64.b64encode(b"Ed" + self.key_id + self.raw).decode()

    def text(self) -> str:
        return f"untrusted comment: minisign public key {self.key_id_hex}\n{self.b64()}\n"

    def ed25519(self) -> Ed25519PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.raw)


@dataclass(frozen=True)
class SecretKey:
    key_id: bytes
    seed: bytes  # 32 bytes
    public: PublicKey

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    def ed25519(self) -> Ed25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)


@dataclass(frozen=True)
class Signature:
    algorithm: bytes
    key_id: bytes
    trusted_comment: str

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)


def generate_keypair() -> SecretKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    seed = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = os.urandom(8)
    return SecretKey(key_id, seed, PublicKey(key_id, raw))


def _b64(line: str, what: str) -> bytes:
    try:
        return base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("E_KEY_INVALID", f"{what}: not base64") from None


def parse_public_key(text: str) -> PublicKey:
    """A public key file's text, or just its base64 line (``minisign -P`` form)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("untrusted comment:"):
        lines = lines[1:]
    if len(lines) != 1:
        raise SignatureError("E_KEY_INVALID", "not a minisign public key (expected a comment line and one key line)",
                             zh="公钥文件格式不正确")
    data = _b64(lines[0], "public key")
    if len(data) != 42 or data[:2] != b"Ed":
        raise SignatureError("E_KEY_INVALID", "not a minisign Ed25519 public key", zh="公钥文件格式不正确")
    return PublicKey(data[2:10], data[10:])


def load_public_key(path: Path | str) -> PublicKey:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SignatureError("E_KEY_INVALID", f"{path}: cannot read public key: {e}", zh="无法读取公钥文件") from None
    return parse_public_key(text)


def write_public_key(pk: PublicKey, path: Path | str) -> None:
    Path(path).write_text(pk.text(), encoding="utf-8")


def write_secret_key(sk: SecretKey, path: Path | str) -> None:
    """minisign's unencrypted secret key format (``minisign -G -W``)."""
    body = b"Ed" + b"\0\0" + b"B2" + b"\0" * 32 + b"\0" * 8 + b"\0" * 8
    secret = sk.seed + sk.public.raw
    chk = hashlib.blake2b(b"Ed" + sk.key_id + secret, digest_size=32).digest()
    body += sk.key_id + secret + chk
    text = "untrusted comment: minisign secret key (unencrypted)\n" + base64.b64encode(body).decode() + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def load_secret_key(path: Path | str) -> SecretKey:
    try:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SignatureError("E_KEY_INVALID", f"{path}: cannot read secret key: {e}", zh="无法读取私钥文件") from None
    data = _b64(lines[-1] if lines else "", "secret key")
    if len(data) != 158 or data[:2] != b"Ed" or data[4:6] != b"B2":
        raise SignatureError("E_KEY_INVALID", f"{path}: not a minisign secret key", zh="私钥文件格式不正确")
    if data[2:4] != b"\0\0":
        raise SignatureError("E_KEY_ENCRYPTED", f"{path}: the secret key is password-protected; "
                             "remove the password with `minisign -C -W` first", zh="私钥有密码保护")
    key_id, secret, chk = data[54:62], data[62:126], data[126:158]
    # minisign 0.11 writes an all-zero checksum for unencrypted keys; accept that or a correct one.
    if chk != b"\0" * 32 and chk != hashlib.blake2b(b"Ed" + key_id + secret, digest_size=32).digest():
        raise SignatureError("E_KEY_INVALID", f"{path}: secret key checksum is wrong", zh="私钥文件已损坏")
    seed, raw = secret[:32], secret[32:]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if derived != raw:
        raise SignatureError("E_KEY_INVALID", f"{path}: secret key is inconsistent", zh="私钥文件已损坏")
    return SecretKey(key_id, seed, PublicKey(key_id, raw))


def _message(data: bytes, algorithm: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=64).digest() if algorithm == PREHASHED else data


def sign_bytes(data: bytes, sk: SecretKey, *, trusted_comment: str | None = None, prehash: bool = True,
               untrusted_comment: str = "signature from edgenode secret key") -> str:
    algorithm = PREHASHED if prehash else LEGACY
    if trusted_comment is None:
        trusted_comment = f"timestamp:{int(time.time())}"
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise SignatureError("E_SIG_INVALID", "trusted comment must be one line")
    priv = sk.ed25519()
    sig = priv.sign(_message(data, algorithm))
    global_sig = priv.sign(sig + trusted_comment.encode("utf-8"))
    return (f"untrusted comment: {untrusted_comment}\n"
            f"{base64.b64encode(algorithm + sk.key_id + sig).decode()}\n"
            f"trusted comment: {trusted_comment}\n"
            f"{base64.b64encode(global_sig).decode()}\n")


def sign_file(path: Path | str, sk: SecretKey, *, trusted_comment: str | None = None, prehash: bool = True,
              sig_path: Path | str | None = None) -> Path:
    path = Path(path)
    if trusted_comment is None:
        trusted_comment = f"timestamp:{int(time.time())}\tfile:{path.name}"
    text = sign_bytes(path.read_bytes(), sk, trusted_comment=trusted_comment, prehash=prehash)
    out = Path(sig_path) if sig_path else path.with_name(path.name + ".minisig")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def parse_signature(text: str) -> tuple[bytes, bytes, bytes, str, bytes]:
    """(algorithm, key_id, signature, trusted_comment, global_signature) or SignatureError."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    lines = [ln.rstrip("\r") for ln in lines]
    if len(lines) != 4 or not lines[0].startswith("untrusted comment:") \
            or not lines[2].startswith("trusted comment: "):
        raise SignatureError("E_SIG_INVALID", "signature file is not in minisign format")
    try:
        sig = base64.b64decode(lines[1], validate=True)
        global_sig = base64.b64decode(lines[3], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("E_SIG_INVALID", "signature file is not in minisign format (bad base64)") from None
    if len(sig) != 74 or sig[:2] not in (LEGACY, PREHASHED) or len(global_sig) != 64:
        raise SignatureError("E_SIG_INVALID", "signature is not a minisign Ed25519 signature")
    return sig[:2], sig[2:10], sig[10:], lines[2][len("trusted comment: "):], global_sig


def verify_bytes(data: bytes, sig_text: str, keys: dict[bytes, PublicKey] | PublicKey) -> Signature:
    """Check ``sig_text`` over ``data`` against the key it names; raise SignatureError otherwise.

    ``keys`` maps key ids to trusted public keys (or is a single key).
    """
    from cryptography.exceptions import InvalidSignature

    algorithm, key_id, sig, comment, global_sig = parse_signature(sig_text)
    if isinstance(keys, PublicKey):
        keys = {keys.key_id: keys}
    pk = keys.get(key_id)
    if pk is None:
        raise SignatureError("E_SIG_UNTRUSTED", f"signed by key {key_id_hex(key_id)}, which this node does not "
                             "trust", zh="内容签名的密钥不受信任，内容未导入")
    try:
        pk.ed25519().verify(sig, _message(data, algorithm))
    except InvalidSignature:
        raise SignatureError("E_SIG_INVALID", f"signature by key {pk.key_id_hex} does not match the data "
                             "(altered content or wrong key)") from None
    try:
        pk.ed25519().verify(global_sig, sig + comment.encode("utf-8"))
    except InvalidSignature:
        raise SignatureError("E_SIG_INVALID", "the trusted comment's signature does not match") from None
    return Signature(algorithm, key_id, comment)
