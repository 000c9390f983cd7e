"""The trust store: publisher keys, their channels, rollback state and key rotation.

Functions take the connection first; the statements themselves live in
:mod:`edgenode.node.imports.trust_queries`.
"""

from __future__ import annotations

import sqlite3

from edgenode.node.imports import trust_queries as tq
from edgenode.protocol import minisign, strictjson
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
        known = tq.stored_public_key(conn, pk.key_id_hex)
        if known is not None and known != pk.b64():
            raise TrustError("E_TRUST_KEY_CLASH", f"a different key with id {pk.key_id_hex} is already trusted",
                             zh="已有一个编号相同但内容不同的密钥")
        if known is None:
            tq.insert_key(conn, pk.key_id_hex, pk.b64(), comment[:200], added_by)
        tq.grant_channels(conn, pk.key_id_hex, channels)
    return get_key(conn, pk.key_id_hex)


def remove_key(conn: sqlite3.Connection, key_id: str, channels=None) -> bool:
    """Forget a key entirely, or only its right to some channels."""
    key_id = key_id.upper().zfill(16)  # as minisign prints it, without leading zeros, or padded
    with transaction(conn):
        if not tq.key_exists(conn, key_id):
            return False
        if channels:
            tq.revoke_channels(conn, key_id, channels)
            if tq.has_any_channel(conn, key_id):
                return True
        tq.delete_key(conn, key_id)
    return True


def get_key(conn: sqlite3.Connection, key_id: str) -> dict | None:
    row = tq.key_row(conn, key_id)
    if not row:
        return None
    d = dict(row)
    d["channels"] = tq.sorted_channels(conn, key_id)
    return d


def list_keys(conn: sqlite3.Connection) -> list[dict]:
    return [get_key(conn, key_id) for key_id in tq.key_ids(conn)]


def public_keys(conn: sqlite3.Connection) -> dict[bytes, minisign.PublicKey]:
    """Trusted keys by raw key id, as ``minisign.verify_bytes`` wants them."""
    out = {}
    for b64 in tq.all_public_keys(conn):
        pk = minisign.parse_public_key(b64)
        out[pk.key_id] = pk
    return out


def channels_of(conn: sqlite3.Connection, key_id: str) -> set[str]:
    return tq.channel_set(conn, key_id)


def require_channel(conn: sqlite3.Connection, key_id: str, channel: str) -> None:
    if channel not in channels_of(conn, key_id):
        raise TrustError("E_CHANNEL_FORBIDDEN", f"key {key_id} is not allowed to publish to channel {channel!r}",
                         zh="签名密钥无权发布这个频道的内容，未导入")


def channel_state(conn: sqlite3.Connection, channel: str) -> dict | None:
    row = tq.channel_state_row(conn, channel)
    return dict(row) if row else None


def all_channel_states(conn: sqlite3.Connection) -> list[dict]:
    return [dict(r) for r in tq.channel_state_rows(conn)]


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
    tq.save_channel_sequence(conn, channel, seq, manifest_sha256)


# -- rotation ----------------------------------------------------------------
def apply_keylist(conn: sqlite3.Connection, data: bytes, sig_text: str) -> dict:
    """Apply a key list signed by a currently trusted key (see docs/bundle-format.md)."""
    sig = minisign.verify_bytes(data, sig_text, public_keys(conn))
    signer = sig.key_id_hex
    try:
        doc = strictjson.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TrustError("E_KEYLIST_INVALID", "key list is not UTF-8 JSON", zh="密钥列表格式不正确") from None
    if not isinstance(doc, dict) or doc.get("type") != "edgenode-keylist" or doc.get("format") != 1:
        raise TrustError("E_KEYLIST_INVALID", "not an edgenode key list (format 1)", zh="密钥列表格式不正确")
    seq, keys, revoke = doc.get("seq"), doc.get("keys") or [], doc.get("revoke") or []
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(keys, list) \
            or not isinstance(revoke, list):
        raise TrustError("E_KEYLIST_INVALID", "key list needs an integer seq and lists keys/revoke",
                         zh="密钥列表格式不正确")
    last = tq.keylist_sequence(conn)
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
            tq.delete_key(conn, key_id)
        tq.save_keylist_sequence(conn, seq)
    return {"applied": True, "signer": signer, "seq": seq, "added": [p.key_id_hex for p, _, _ in parsed],
            "revoked": revoke}


# -- trust that arrives with enrolment ----------------------------------------------------------
def apply_chain(conn: sqlite3.Connection, lists) -> dict:
    """Apply a hub's chain of key lists in order, each only if newer than the last applied.

    A list signed by a key this node never trusted is skipped, not an error: it predates the
    key this node pinned (it enrolled after a rotation).  Any other refusal stops the chain
    there, so a later list never applies on top of a missing one.
    """
    out = {"applied": [], "skipped": [], "refused": None}
    if not isinstance(lists, list):
        return out
    items = sorted((x for x in lists if isinstance(x, dict) and isinstance(x.get("seq"), int)),
                   key=lambda x: x["seq"])
    for item in items:
        if item["seq"] <= tq.keylist_sequence(conn):
            continue
        data, sig = item.get("keylist"), item.get("signature")
        if not isinstance(data, str) or not isinstance(sig, str):
            out["refused"] = {"seq": item["seq"], "code": "E_KEYLIST_INVALID"}
            break
        try:
            apply_keylist(conn, data.encode("utf-8"), sig)
        except BundleError as e:
            if e.code == "E_SIG_UNTRUSTED":
                out["skipped"].append(item["seq"])
                continue
            out["refused"] = {"seq": item["seq"], "code": e.code, "message": e.message}
            break
        out["applied"].append(item["seq"])
    return out


def pin_county(conn: sqlite3.Connection, offer) -> dict:
    """At enrolment: trust the county key the hub names for its channels, then follow its chain."""
    if not isinstance(offer, dict) or not isinstance(offer.get("county_key"), str):
        raise TrustError("E_ENROLL_TRUST", "the hub's answer carries no county key", zh="县中心没有提供发布密钥")
    pk = minisign.parse_public_key(offer["county_key"])
    key = add_key(conn, pk, offer.get("channels") or [], comment="县中心（注册时获得）", added_by="enrolment")
    return {"county_key": key["key_id"], "channels": key["channels"], **apply_chain(conn, offer.get("keylists"))}
