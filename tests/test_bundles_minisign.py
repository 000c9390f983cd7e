"""Interoperability with the stock minisign tool (Debian's /usr/bin/minisign), both signature forms."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgenode.protocol import minisign
from edgenode.protocol.minisign import SignatureError

MINISIGN = shutil.which("minisign")
pytestmark = pytest.mark.skipif(MINISIGN is None, reason="minisign is not installed (apt-get install minisign)")


def run(*args, **kw):
    return subprocess.run([MINISIGN, *args], capture_output=True, text=True, timeout=30, **kw)


@pytest.fixture
def tool_key(tmp_path):
    """A key pair made by minisign itself (unencrypted: -W)."""
    r = run("-G", "-W", "-p", str(tmp_path / "tool.pub"), "-s", str(tmp_path / "tool.key"))
    assert r.returncode == 0, r.stderr
    return tmp_path / "tool.pub", tmp_path / "tool.key"


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_bytes('{"format": 1, "title": "水稻插秧"}\n'.encode())
    return p


@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_edgenode_verifies_what_minisign_signs(tool_key, data, legacy):
    pub, key = tool_key
    r = run("-S", "-s", str(key), "-m", str(data), *(["-l"] if legacy else []), "-t", "channel:sannong")
    assert r.returncode == 0, r.stderr
    sig_text = (data.parent / "manifest.json.minisig").read_text()
    pk = minisign.load_public_key(pub)
    sig = minisign.verify_bytes(data.read_bytes(), sig_text, pk)
    assert sig.algorithm == (minisign.LEGACY if legacy else minisign.PREHASHED)
    assert sig.trusted_comment == "channel:sannong"
    shown = pub.read_text().splitlines()[0].split()[-1]  # minisign omits leading zeros
    assert int(sig.key_id_hex, 16) == int(shown, 16)
    with pytest.raises(SignatureError) as e:
        minisign.verify_bytes(data.read_bytes() + b" ", sig_text, pk)
    assert e.value.code == "E_SIG_INVALID"


@pytest.mark.parametrize("prehash", [True, False], ids=["prehashed", "legacy"])
def test_minisign_verifies_what_edgenode_signs(tmp_path, data, prehash):
    sk = minisign.generate_keypair()
    minisign.write_public_key(sk.public, tmp_path / "e.pub")
    minisign.sign_file(data, sk, trusted_comment="channel:sannong\tseq:3", prehash=prehash)
    r = run("-V", "-p", str(tmp_path / "e.pub"), "-m", str(data))
    assert r.returncode == 0, r.stderr
    assert "channel:sannong" in r.stdout
    r = run("-V", "-H", "-p", str(tmp_path / "e.pub"), "-m", str(data))  # -H: require prehashed
    assert (r.returncode == 0) == prehash
    data.write_bytes(data.read_bytes() + b"tampered")
    assert run("-V", "-p", str(tmp_path / "e.pub"), "-m", str(data)).returncode != 0


def test_key_files_are_shared_both_ways(tmp_path, tool_key, data):
    pub, key = tool_key
    # minisign's secret key loads in edgenode and matches its public key.
    assert minisign.load_secret_key(key).public == minisign.load_public_key(pub)
    # edgenode's secret key signs with minisign; edgenode verifies that.
    sk = minisign.generate_keypair()
    minisign.write_secret_key(sk, tmp_path / "e.key")
    r = run("-S", "-W", "-s", str(tmp_path / "e.key"), "-m", str(data), "-x", str(tmp_path / "s.minisig"))
    assert r.returncode == 0, r.stderr
    minisign.verify_bytes(data.read_bytes(), (tmp_path / "s.minisig").read_text(), sk.public)
    assert oct((tmp_path / "e.key").stat().st_mode & 0o777) == "0o600"


def test_wrong_key_and_trusted_comment_tampering(tmp_path, data):
    a, b = minisign.generate_keypair(), minisign.generate_keypair()
    sig = minisign.sign_bytes(data.read_bytes(), a, trusted_comment="seq:1")
    with pytest.raises(SignatureError) as e:
        minisign.verify_bytes(data.read_bytes(), sig, b.public)
    assert e.value.code == "E_SIG_UNTRUSTED"
    forged = sig.replace("trusted comment: seq:1", "trusted comment: seq:9")
    with pytest.raises(SignatureError) as e:
        minisign.verify_bytes(data.read_bytes(), forged, a.public)
    assert e.value.code == "E_SIG_INVALID"


def test_password_protected_key_is_refused_with_advice(tmp_path, tool_key):
    _, key = tool_key
    # minisign marks an encrypted key by its KDF id ("Sc", scrypt) in bytes 2-3.
    import base64
    comment, line = key.read_text().splitlines()[:2]
    raw = bytearray(base64.b64decode(line))
    raw[2:4] = b"Sc"
    key.write_text(comment + "\n" + base64.b64encode(bytes(raw)).decode() + "\n")
    with pytest.raises(SignatureError) as e:
        minisign.load_secret_key(key)
    assert e.value.code == "E_KEY_ENCRYPTED" and "minisign -C" in e.value.message


@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_bundle_signed_with_stock_minisign_imports(tool_key, tmp_path, cfg, conn, store, legacy):
    """A publisher with only the minisign tool: build unsigned, sign with minisign, the node imports it."""
    from edgenode.node.imports import trust
    from edgenode.protocol.build import build_bundle
    from edgenode.node.imports.pipeline import import_bundle
    from tests.helpers_bundles import make_source

    pub, key = tool_key
    shown = pub.read_text().splitlines()[0].split()[-1]  # as minisign prints it (leading zeros dropped)
    bundle = build_bundle(make_source(tmp_path / "src", n=2), "sannong", 1, tmp_path / "out", key_id=shown)
    r = run("-S", "-s", str(key), "-m", str(bundle / "manifest.json"), *(["-l"] if legacy else []))
    assert r.returncode == 0, r.stderr
    trust.add_key(conn, minisign.load_public_key(pub), ["sannong"])
    result = import_bundle(cfg, conn, store, bundle, source="test")
    assert (result.result, result.added) == ("imported", 2), result.error
