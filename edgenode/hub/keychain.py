"""The county's trust anchor for its nodes: the county key and the chain of signed key lists.

A node pins the county key when it enrols: the one-time enrolment code, handed over by
county staff, is what makes that answer trustworthy.  After that it accepts only key lists
signed by a key it already trusts (docs/bundle-format.md, "Trust, rollback and rotation").
Every change is one more list in the chain, signed by the county key of its day:

* ``rotate``: a new county key, in a list signed by the old one that also revokes the old;
* ``add``: another publisher's key (an upstream tier's, say) for some channels;
* ``revoke``: a key withdrawn, so its bundles are refused from the next heartbeat on.

The whole chain rides on every enrolment and heartbeat answer and on every stick the hub
writes, so a node that missed several changes still follows them in order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.protocol import minisign
from edgenode.protocol.build import write_keylist

CHAIN_DIR = "keylists"
SOFTWARE = "software"  # the release channel (protocol/release.py)


def county_key(cfg) -> minisign.SecretKey:
    """The county's minisign signing key, made on first use (0600) beside its public key."""
    d = cfg.data_path / "hub_keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    sk_path, pk_path = d / "county.key", d / "county.pub"
    if not sk_path.exists():
        sk = minisign.generate_keypair()
        minisign.write_secret_key(sk, sk_path)
        minisign.write_public_key(sk.public, pk_path)
    return minisign.load_secret_key(sk_path)


def county_public_key_path(cfg) -> Path:
    county_key(cfg)
    return cfg.data_path / "hub_keys" / "county.pub"


def channels(cfg) -> list[str]:
    """The channels the county key signs for (``hub.channels``), and ``software``: the county grants that
    one to release keys (``keys add release.pub --channel software``); a release signed by the county key
    itself is still refused, since a release key must hold no other channel (docs/updates.md)."""
    return sorted(set(cfg["hub.channels"]) | {SOFTWARE})


def _dir(cfg) -> Path:
    d = cfg.data_path / "hub_keys" / CHAIN_DIR
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def chain(cfg) -> list[dict]:
    """Every key list so far, oldest first: ``{"seq", "keylist", "signature"}``."""
    out = []
    for path in sorted(_dir(cfg).glob("*.json")):
        sig = path.with_name(path.name + ".minisig")
        if sig.is_file():
            out.append({"seq": int(path.stem), "keylist": path.read_text(encoding="utf-8"),
                        "signature": sig.read_text(encoding="utf-8")})
    return out


def _append(cfg, signer: minisign.SecretKey, keys, revoke=()) -> int:
    lists = chain(cfg)
    seq = (lists[-1]["seq"] if lists else 0) + 1
    path = _dir(cfg) / f"{seq:06d}.json"
    write_keylist(path, signer, keys, seq=seq, revoke=revoke)
    return seq


def offer(cfg) -> dict:
    """What an enrolment answer carries: the county key to pin, its channels, and the chain."""
    return {"county_key": county_key(cfg).public.b64(), "channels": channels(cfg),
            "keylists": chain(cfg)}


def rotate(cfg) -> dict:
    """A new county key; the old one signs the list that introduces it and revokes itself."""
    old = county_key(cfg)
    new = minisign.generate_keypair()
    seq = _append(cfg, old, [(new.public, channels(cfg))], revoke=[old.key_id_hex])
    d = cfg.data_path / "hub_keys"
    # The old secret is kept (0600) for the record; nothing signs with it again.
    os.replace(d / "county.key", d / f"county-{old.key_id_hex}.key.retired")
    tmp_sk, tmp_pk = d / "county.key.tmp", d / "county.pub.tmp"
    minisign.write_secret_key(new, tmp_sk)
    minisign.write_public_key(new.public, tmp_pk)
    os.replace(tmp_pk, d / "county.pub")
    os.replace(tmp_sk, d / "county.key")
    return {"seq": seq, "old_key": old.key_id_hex, "new_key": new.key_id_hex}


def add(cfg, public_key_file, key_channels: list[str] | None = None) -> dict:
    """Trust another publisher's key on every node, for some of the county's channels."""
    pk = minisign.load_public_key(Path(public_key_file))
    wanted = sorted(set(key_channels or channels(cfg)))
    if not set(wanted) <= set(channels(cfg)):
        raise EdgenodeError("E_KEYLIST_FORBIDDEN", f"the county key signs only {channels(cfg)}; "
                            f"cannot grant {sorted(set(wanted) - set(channels(cfg)))}",
                            zh="县中心密钥无权授予这些频道")
    seq = _append(cfg, county_key(cfg), [(pk, wanted)])
    return {"seq": seq, "key": pk.key_id_hex, "channels": wanted}


def revoke(cfg, key_id: str) -> dict:
    """Withdraw a key from every node; the county key itself is withdrawn by ``rotate``."""
    key_id = key_id.upper().zfill(16)
    current = county_key(cfg)
    if key_id == current.key_id_hex:
        raise EdgenodeError("E_KEYLIST_SELF", "the current county key is replaced with `edgenode hub keys rotate`",
                            zh="当前县中心密钥只能通过更换来撤销")
    seq = _append(cfg, current, [], revoke=[key_id])
    return {"seq": seq, "revoked": key_id}


def software_trust(cfg) -> tuple[dict, object]:
    """What this county's nodes trust, from the county key and the chain it hands them: ``(keys by raw id,
    channels_of(key_id_hex))`` for protocol/release.verify, so the hub accepts a release exactly when its
    nodes would (a key list here was written by this hub; the nodes check its signatures)."""
    current = county_key(cfg).public
    keys = {current.key_id: current}
    rights = {current.key_id_hex: set(channels(cfg))}
    for item in chain(cfg):
        doc = json.loads(item["keylist"])
        for k in doc.get("keys") or []:
            pk = minisign.parse_public_key(k["public_key"])
            keys[pk.key_id] = pk
            rights[pk.key_id_hex] = set(k.get("channels") or [])
        for key_id in doc.get("revoke") or []:
            key_id = key_id.upper().zfill(16)
            rights.pop(key_id, None)
            keys = {raw: pk for raw, pk in keys.items() if pk.key_id_hex != key_id}
    return keys, (lambda key_id: rights.get(key_id, set()))


def write_to_stick(cfg, dest_root: Path) -> int:
    """The chain beside the bundles on a stick (``edgenode-bundles/keylists/``); returns how many."""
    out = dest_root / CHAIN_DIR
    out.mkdir(parents=True, exist_ok=True)
    lists = chain(cfg)
    for item in lists:
        name = f"{item['seq']:06d}.json"
        (out / name).write_text(item["keylist"], encoding="utf-8")
        (out / (name + ".minisig")).write_text(item["signature"], encoding="utf-8")
    return len(lists)


def describe(cfg) -> dict:
    """For ``edgenode hub keys``: the current key, its channels and the chain's last entries."""
    lists = chain(cfg)
    return {"county_key": county_key(cfg).key_id_hex, "channels": channels(cfg),
            "keylists": [{"seq": x["seq"], **{k: json.loads(x["keylist"]).get(k) for k in ("keys", "revoke")}}
                         for x in lists]}
