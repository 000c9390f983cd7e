"""Interoperability with the stock minisign tool (Debian's /usr/bin/minisign), both signature forms."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from edgenode.bundles import minisign
from edgenode.bundles.minisign import SignatureError

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
    assert sig.key_id_hex in pub.read_text()
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


def test_password_protected_key_is_refused_with_advice(tmp_path):
    r = run("-G", "-p", str(tmp_path / "p.pub"), "-s", str(tmp_path / "p.key"), input="pw\npw\n")
    if r.returncode != 0:
        pytest.skip("minisign would not read a password from stdin here")
    with pytest.raises(SignatureError) as e:
        minisign.load_secret_key(tmp_path / "p.key")
    assert e.value.code == "E_KEY_ENCRYPTED"
