"""Trust store: channel rights, rollback state, key rotation through a signed key list."""

from __future__ import annotations

import pytest

from edgenode.protocol import minisign
from edgenode.node.imports import trust
from edgenode.protocol.build import write_keylist
from edgenode.node.imports.pipeline import import_bundle
from edgenode.node.imports.trust import TrustError
from tests.helpers_bundles import make_bundle, trust_key


def _sig(path):
    return path.with_name(path.name + ".minisig").read_text()


def test_rotation_by_a_key_list_carried_in_a_bundle(cfg, conn, store, tmp_path):
    old, new = minisign.generate_keypair(), minisign.generate_keypair()
    trust_key(conn, old, "sannong")
    assert import_bundle(cfg, conn, store, make_bundle(tmp_path / "1", old, seq=1), source="t").result == "imported"

    # The first bundle signed by the new key carries its introduction, signed by the old key.
    b2 = make_bundle(tmp_path / "2", new, seq=2, seed=2)
    write_keylist(b2, old, [(new.public, ["sannong"])], seq=1, revoke=[old.key_id_hex])
    r = import_bundle(cfg, conn, store, b2, source="t")
    assert r.result == "imported", r.error
    keys = {k["key_id"]: k for k in trust.list_keys(conn)}
    assert set(keys) == {new.key_id_hex}
    assert keys[new.key_id_hex]["added_by"] == f"keylist:{old.key_id_hex}:1"

    # The old key is revoked: its bundles are refused now.
    r = import_bundle(cfg, conn, store, make_bundle(tmp_path / "3", old, seq=3, seed=3), source="t")
    assert r.error_code == "E_SIG_UNTRUSTED"


def test_key_list_rules(conn, tmp_path):
    a, b, c = (minisign.generate_keypair() for _ in range(3))
    trust.add_key(conn, a.public, ["sannong"])
    trust.add_key(conn, c.public, ["shequ"])
    path = tmp_path / "keys.json"

    write_keylist(path, a, [(b.public, ["shequ"])], seq=1)  # a cannot grant a channel it lacks
    with pytest.raises(TrustError) as e:
        trust.apply_keylist(conn, path.read_bytes(), _sig(path))
    assert e.value.code == "E_KEYLIST_FORBIDDEN"

    write_keylist(path, a, [], seq=1, revoke=[c.key_id_hex])  # nor revoke another channel's key
    with pytest.raises(TrustError) as e:
        trust.apply_keylist(conn, path.read_bytes(), _sig(path))
    assert e.value.code == "E_KEYLIST_FORBIDDEN"

    write_keylist(path, b, [(b.public, ["sannong"])], seq=1)  # signed by an untrusted key
    with pytest.raises(minisign.SignatureError) as e:
        trust.apply_keylist(conn, path.read_bytes(), _sig(path))
    assert e.value.code == "E_SIG_UNTRUSTED"

    write_keylist(path, a, [(b.public, ["sannong"])], seq=5)
    assert trust.apply_keylist(conn, path.read_bytes(), _sig(path))["applied"]
    assert trust.apply_keylist(conn, path.read_bytes(), _sig(path))["applied"] is False  # same list: no-op
    old = tmp_path / "old.json"
    write_keylist(old, a, [(b.public, ["sannong"])], seq=4)  # an older list cannot be replayed
    with pytest.raises(TrustError) as e:
        trust.apply_keylist(conn, old.read_bytes(), _sig(old))
    assert e.value.code == "E_KEYLIST_ROLLBACK"


def test_channel_rights_can_be_narrowed(conn):
    k = minisign.generate_keypair()
    trust.add_key(conn, k.public, ["sannong", "shequ"])
    trust.require_channel(conn, k.key_id_hex, "shequ")
    assert trust.remove_key(conn, k.key_id_hex, ["shequ"])
    with pytest.raises(TrustError) as e:
        trust.require_channel(conn, k.key_id_hex, "shequ")
    assert e.value.code == "E_CHANNEL_FORBIDDEN"
    trust.require_channel(conn, k.key_id_hex, "sannong")
    with pytest.raises(TrustError) as e:
        trust.add_key(conn, k.public, ["Bad Channel"])
    assert e.value.code == "E_TRUST_BAD_CHANNEL"
