"""The trust store: publisher keys, their channels, rollback state and key rotation.

SQL functions take the connection first; writers expect a surrounding
``db.transaction`` where several statements must land together.
"""

from __future__ import annotations

import json
import sqlite3
import time

from edgenode.protocol import minisign
from edgenode.protocol.bundle import CHANNEL_RE, BundleError
from edgenode.core.db import transaction


class TrustError(BundleError):
    pass


def _check_channels(channels) -> list[str]:
    channels = sorted(set(channels))
    if not channels:
        raise TrustError("E_TRUST_NO_CHANNEL", "name at least one channel the key may publish to",
                         zh="请至少指定一个频道")
    for c in channels:
        if not isinstance(c, str) or not CHANNEL_RE.match(c):
            raise TrustError("E_TRUST_BAD_CHANNEL", f"channel {str(c)[:40]!r}: use 1-32 lower-case letters, "
                             "digits, '_' or '-'", zh="频道名称格式不正确")
    return channels


def add_key(conn: sqlite3.Connection, pk: minisign.PublicKey, channels, *, comment: str = "",
            added_by: str = "admin") -> dict:
    """Trust ``pk`` for ``channels`` (added to any it already has)."""
    channels = _check_channels(channels)
    with transaction(conn):
        row = conn.execute("SELECT public_key FROM trust_keys WHERE key_id = ?", (pk.key_id_hex,)).fetchone()
        if row and row[0] != pk.b64():
            raise TrustError("E_TRUST_KEY_CLASH", f"a different key with id {pk.key_id_hex} is already trusted",
                             zh="已有一个编号相同但内容不同的密钥")
        if not row:
            conn.execute("INSERT INTO trust_keys (key_id, public_key, comment, added_at, added_by) "
                         "VALUES (?, ?, ?, ?, ?)", (pk.key_id_hex, pk.b64(), comment[:200], time.time(), added_by))
        conn.executemany("INSERT OR IGNORE INTO trust_channels (key_id, channel) VALUES (?, ?)",
                         [(pk.key_id_hex, c) for c in channels])
    return get_key(conn, pk.key_id_hex)


def remove_key(conn: sqlite3.Connection, key_id: str, channels=None) -> bool:
    """Forget a key entirely, or only its right to some channels."""
    key_id = key_id.upper().zfill(16)  # as minisign prints it, without leading zeros, or padded
    with transaction(conn):
        if not conn.execute("SELECT 1 FROM trust_keys WHERE key_id = ?", (key_id,)).fetchone():
            return False
        if channels:
            conn.executemany("DELETE FROM trust_channels WHERE key_id = ? AND channel = ?",
                             [(key_id, c) for c in channels])
            if conn.execute("SELECT 1 FROM trust_channels WHERE key_id = ?", (key_id,)).fetchone():
                return True
        conn.execute("DELETE FROM trust_keys WHERE key_id = ?", (key_id,))
    return True


def get_key(conn: sqlite3.Connection, key_id: str) -> dict | None:
    row = conn.execute("SELECT * FROM trust_keys WHERE key_id = ?", (key_id,)).fetchone()
    if not row:
        return None
    d = dict(row)
    d["channels"] = [r[0] for r in conn.execute(
        "SELECT channel FROM trust_channels WHERE key_id = ? ORDER BY channel", (key_id,))]
    return d


def list_keys(conn: sqlite3.Connection) -> list[dict]:
    return [get_key(conn, r[0]) for r in conn.execute("SELECT key_id FROM trust_keys ORDER BY added_at, key_id")]


def public_keys(conn: sqlite3.Connection) -> dict[bytes, minisign.PublicKey]:
    """Trusted keys by raw key id, as ``minisign.verify_bytes`` wants them."""
    out = {}
    for (b64,) in conn.execute("SELECT public_key FROM trust_keys"):
        pk = minisign.parse_public_key(b64)
        out[pk.key_id] = pk
    return out


def channels_of(conn: sqlite3.Connection, key_id: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT channel FROM trust_channels WHERE key_id = ?", (key_id,))}


def require_channel(conn: sqlite3.Connection, key_id: str, channel: str) -> None:
    if channel not in channels_of(conn, key_id):
        raise TrustError("E_CHANNEL_FORBIDDEN", f"key {key_id} is not allowed to publish to channel {channel!r}",
                         zh="签名密钥无权发布这个频道的内容，未导入")


def channel_state(conn: sqlite3.Connection, channel: str) -> dict | None:
    row = conn.execute("SELECT * FROM channel_state WHERE channel = ?", (channel,)).fetchone()
    return dict(row) if row else None


def all_channel_states(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM channel_state ORDER BY channel")]


def check_sequence(conn: sqlite3.Connection, channel: str, seq: int, manifest_sha256: str) -> bool:
    """True when the bundle is new; False for an identical re-import; E_ROLLBACK otherwise."""
    state = channel_state(conn, channel)
    if state is None or seq > state["seq"]:
        return True
    if seq == state["seq"] and manifest_sha256 == state["manifest_sha256"]:
        return False
    raise TrustError("E_ROLLBACK", f"channel {channel!r}: sequence {seq} is not newer than the {state['seq']} "
                     "already imported (rollback refused)", zh="这是比本机已有内容更旧的内容包，未导入")


def advance(conn: sqlite3.Connection, channel: str, seq: int, manifest_sha256: str) -> None:
    """Inside the import's transaction: remember the accepted sequence."""
    conn.execute("INSERT INTO channel_state (channel, seq, manifest_sha256, imported_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (channel) DO UPDATE SET seq = excluded.seq, manifest_sha256 = excluded.manifest_sha256, "
                 "imported_at = excluded.imported_at", (channel, seq, manifest_sha256, time.time()))


# -- rotation ----------------------------------------------------------------
def apply_keylist(conn: sqlite3.Connection, data: bytes, sig_text: str) -> dict:
    """Apply a key list signed by a currently trusted key (see docs/bundle-format.md)."""
    sig = minisign.verify_bytes(data, sig_text, public_keys(conn))
    signer = sig.key_id_hex
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TrustError("E_KEYLIST_INVALID", "key list is not UTF-8 JSON", zh="密钥列表格式不正确") from None
    if not isinstance(doc, dict) or doc.get("type") != "edgenode-keylist" or doc.get("format") != 1:
        raise TrustError("E_KEYLIST_INVALID", "not an edgenode key list (format 1)", zh="密钥列表格式不正确")
    seq, keys, revoke = doc.get("seq"), doc.get("keys") or [], doc.get("revoke") or []
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(keys, list) \
            or not isinstance(revoke, list):
        raise TrustError("E_KEYLIST_INVALID", "key list needs an integer seq and lists keys/revoke",
                         zh="密钥列表格式不正确")
    row = conn.execute("SELECT value FROM trust_meta WHERE name = 'keylist_seq'").fetchone()
    last = row[0] if row else 0
    if seq <= last:
        if seq == last:
            return {"applied": False, "signer": signer, "seq": seq, "added": [], "revoked": []}
        raise TrustError("E_KEYLIST_ROLLBACK", f"key list seq {seq} is not newer than {last}",
                         zh="密钥列表比本机已有的更旧")
    allowed = channels_of(conn, signer)
    parsed = []
    for k in keys:
        if not isinstance(k, dict) or not isinstance(k.get("public_key"), str):
            raise TrustError("E_KEYLIST_INVALID", "each key needs a public_key", zh="密钥列表格式不正确")
        pk = minisign.parse_public_key(k["public_key"])
        channels = _check_channels(k.get("channels") or [])
        if not set(channels) <= allowed:
            raise TrustError("E_KEYLIST_FORBIDDEN", f"signer {signer} cannot grant channels "
                             f"{sorted(set(channels) - allowed)}", zh="签名密钥无权授予这些频道")
        parsed.append((pk, channels, str(k.get("comment") or "")))
    if not all(isinstance(k, str) for k in revoke):
        raise TrustError("E_KEYLIST_INVALID", "revoke must list key ids", zh="密钥列表格式不正确")
    revoke = [k.upper().zfill(16) for k in revoke]
    for key_id in revoke:
        if not channels_of(conn, key_id) <= allowed:
            raise TrustError("E_KEYLIST_FORBIDDEN", f"signer {signer} cannot revoke {key_id}",
                             zh="签名密钥无权撤销这个密钥")
    with transaction(conn):
        for pk, channels, comment in parsed:
            add_key(conn, pk, channels, comment=comment, added_by=f"keylist:{signer}:{seq}")
        for key_id in revoke:
            conn.execute("DELETE FROM trust_keys WHERE key_id = ?", (key_id,))
        conn.execute("INSERT INTO trust_meta (name, value) VALUES ('keylist_seq', ?) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (seq,))
    return {"applied": True, "signer": signer, "seq": seq, "added": [p.key_id_hex for p, _, _ in parsed],
            "revoked": revoke}
