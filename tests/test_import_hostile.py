"""Bad input: every case refused with a stable code and a clear message; store and catalogue unchanged."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess

import pytest

from edgenode.protocol import minisign
from edgenode.node.imports import trust
from edgenode.protocol.bundle import MANIFEST, SIGNATURE
from edgenode.node.imports.history import recent
from edgenode.node.imports.pipeline import import_bundle
from tests.conftest import make_config
from tests.helpers_bundles import make_bundle, new_key, rewrite_manifest, snapshot, trust_key


def _first(doc):
    return doc["resources"][0]


def _set(field, value):
    def edit(doc):
        _first(doc)[field] = value
    return edit


# Each case: (name, expected code, mutate(bundle, sk, ctx)).
def m_no_sig(b, sk, ctx):
    (b / SIGNATURE).unlink()


def m_bad_sig(b, sk, ctx):
    data = (b / MANIFEST).read_bytes().replace("农技资料".encode(), "农机资料".encode(), 1)
    (b / MANIFEST).write_bytes(data)  # altered after signing


def m_garbage_sig(b, sk, ctx):
    (b / SIGNATURE).write_text("untrusted comment: x\nnot base64!!\ntrusted comment: x\nAAAA\n")


def m_wrong_key(b, sk, ctx):
    other = minisign.generate_keypair()
    rewrite_manifest(b, other, lambda d: d.update(key_id=other.key_id_hex))


def m_forged_key_id(b, sk, ctx):
    # Signed by an untrusted key that claims the trusted key's id.
    other = minisign.generate_keypair()
    forged = minisign.SecretKey(sk.key_id, other.seed, minisign.PublicKey(sk.key_id, other.public.raw))
    minisign.sign_file(b / MANIFEST, forged)


def m_manifest_names_other_key(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d.update(key_id="0123456789ABCDEF"))


def m_channel_forbidden(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d.update(channel="shequ"))


def m_rollback(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d.update(seq=4))  # seq 5 is already in


def m_same_seq_other_content(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: (d.update(seq=5), _first(d).update(title="改过的标题")))


def m_malformed_json(b, sk, ctx):
    (b / MANIFEST).write_bytes(b'{"format": 1, "channel": "sannong", ')
    minisign.sign_file(b / MANIFEST, sk)


def m_not_object(b, sk, ctx):
    (b / MANIFEST).write_bytes(b"[1, 2, 3]")
    minisign.sign_file(b / MANIFEST, sk)


def m_too_large(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: _first(d).update(description="长" * 3000))  # > 8 KiB cap below


def m_unknown_version(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d.update(format=2))


def m_unknown_field(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: _first(d).update(titel="typo"))


def m_hash_mismatch(b, sk, ctx):
    p = b / "files" / "doc001.pdf"
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))  # same size, different bytes


def m_size_claim_mismatch(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d["resources"][1].update(size=d["resources"][1]["size"] + 1))


def m_truncated(b, sk, ctx):
    p = b / "files" / "doc002.pdf"
    p.write_bytes(p.read_bytes()[:1000])


def m_missing_file(b, sk, ctx):
    (b / "files" / "doc002.pdf").unlink()


def path_case(path):
    def mutate(b, sk, ctx):
        rewrite_manifest(b, sk, _set("path", path))
    return mutate


def m_duplicate_path(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d["resources"][1].update(path=_first(d)["path"]))


def m_duplicate_path_case(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d["resources"][1].update(path=_first(d)["path"].upper()))


def m_duplicate_id(b, sk, ctx):
    rewrite_manifest(b, sk, lambda d: d["resources"][1].update(id=_first(d)["id"]))


def m_symlink(b, sk, ctx):
    p = b / "files" / "doc000.pdf"
    target = ctx["tmp"] / "outside.pdf"
    shutil.copyfile(p, target)  # same bytes and hash: only the link itself is wrong
    p.unlink()
    p.symlink_to(target)


def m_symlinked_dir(b, sk, ctx):
    outside = ctx["tmp"] / "outside-dir"
    shutil.move(b / "files", outside)
    (b / "files").symlink_to(outside)


def m_device(b, sk, ctx):
    p = b / "files" / "doc000.pdf"
    p.unlink()
    os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers


def m_fifo(b, sk, ctx):
    p = b / "files" / "doc000.pdf"
    p.unlink()
    os.mkfifo(p)


def m_directory(b, sk, ctx):
    p = b / "files" / "doc000.pdf"
    p.unlink()
    p.mkdir()


def m_empty_title(b, sk, ctx):
    rewrite_manifest(b, sk, _set("title", "  "))


def m_unknown_column(b, sk, ctx):
    rewrite_manifest(b, sk, _set("column", "yule"))


def m_non_utf8_bytes(b, sk, ctx):
    data = (b / MANIFEST).read_bytes().replace("农技资料 0".encode(), "农技资料 0".encode("gbk"), 1)
    (b / MANIFEST).write_bytes(data)
    minisign.sign_file(b / MANIFEST, sk)


def m_lone_surrogate(b, sk, ctx):
    data = (b / MANIFEST).read_text(encoding="utf-8").replace("农技资料 0", "\\ud800资料", 1)
    (b / MANIFEST).write_text(data, encoding="utf-8")
    minisign.sign_file(b / MANIFEST, sk)


def m_kind_mismatch(b, sk, ctx):
    rewrite_manifest(b, sk, _set("kind", "video"))


def m_huge_claim(b, sk, ctx):
    rewrite_manifest(b, sk, _set("size", 2 ** 49))  # 512 TiB: more than any disk here


def m_not_a_pdf(b, sk, ctx):
    # Validly signed bytes that are not what they claim: refused by the media check, nothing stored.
    p = b / "files" / "doc000.pdf"
    p.write_bytes(b"MZ" + b"\0" * 4094)
    rewrite_manifest(b, sk, lambda d: _first(d).update(
        sha256=__import__("hashlib").sha256(p.read_bytes()).hexdigest(), size=4096))


CASES = [
    ("missing signature", "E_SIG_MISSING", m_no_sig),
    ("manifest altered after signing", "E_SIG_INVALID", m_bad_sig),
    ("garbage signature file", "E_SIG_INVALID", m_garbage_sig),
    ("signed by an untrusted key", "E_SIG_UNTRUSTED", m_wrong_key),
    ("untrusted key claiming a trusted key id", "E_SIG_INVALID", m_forged_key_id),
    ("manifest names another key", "E_SIG_INVALID", m_manifest_names_other_key),
    ("key not allowed for the channel", "E_CHANNEL_FORBIDDEN", m_channel_forbidden),
    ("rollback to an older sequence", "E_ROLLBACK", m_rollback),
    ("same sequence, different manifest", "E_ROLLBACK", m_same_seq_other_content),
    ("malformed JSON", "E_MANIFEST_INVALID", m_malformed_json),
    ("manifest not an object", "E_MANIFEST_INVALID", m_not_object),
    ("over-large manifest", "E_MANIFEST_TOO_LARGE", m_too_large),
    ("unknown format version", "E_FORMAT_VERSION", m_unknown_version),
    ("unknown entry field", "E_MANIFEST_INVALID", m_unknown_field),
    ("hash mismatch", "E_HASH_MISMATCH", m_hash_mismatch),
    ("size mismatch", "E_SIZE_MISMATCH", m_size_claim_mismatch),
    ("truncated file", "E_SIZE_MISMATCH", m_truncated),
    ("missing file", "E_MISSING_FILE", m_missing_file),
    ("absolute path", "E_BAD_PATH", path_case("/etc/passwd")),
    ("dot-dot path", "E_BAD_PATH", path_case("files/../../outside.pdf")),
    ("backslash path", "E_BAD_PATH", path_case("files\\doc000.pdf")),
    ("NUL in path", "E_BAD_PATH", path_case("files/doc\x00.pdf")),
    ("control character in path", "E_BAD_PATH", path_case("files/doc\x1b[31m.pdf")),
    ("newline in path", "E_BAD_PATH", path_case("files/doc\n000.pdf")),
    ("empty path component", "E_BAD_PATH", path_case("files//doc000.pdf")),
    ("duplicate path", "E_DUPLICATE_ENTRY", m_duplicate_path),
    ("duplicate path differing in case", "E_DUPLICATE_ENTRY", m_duplicate_path_case),
    ("duplicate id", "E_DUPLICATE_ENTRY", m_duplicate_id),
    ("symlink file", "E_NOT_REGULAR_FILE", m_symlink),
    ("symlinked directory", "E_NOT_REGULAR_FILE", m_symlinked_dir),
    ("character device", "E_NOT_REGULAR_FILE", m_device),
    ("FIFO", "E_NOT_REGULAR_FILE", m_fifo),
    ("directory instead of file", "E_NOT_REGULAR_FILE", m_directory),
    ("empty title", "E_METADATA", m_empty_title),
    ("unknown column", "E_METADATA", m_unknown_column),
    ("kind does not match extension", "E_METADATA", m_kind_mismatch),
    ("non-UTF-8 manifest bytes", "E_MANIFEST_INVALID", m_non_utf8_bytes),
    ("lone surrogate in text", "E_MANIFEST_INVALID", m_lone_surrogate),  # strict JSON (issue 16)
    ("claimed size larger than the disk", "E_DISK_FULL", m_huge_claim),
    ("payload is not what its kind says", "E_MEDIA_CORRUPT", m_not_a_pdf),
]


@pytest.fixture
def node(tmp_path):
    from edgenode.core.db import open_main
    from edgenode.core.store import open_store
    cfg = make_config(tmp_path / "data", bundles__max_manifest_kb=8, store__free_space_floor_mb=0)
    conn = open_main(cfg)
    store = open_store(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    # An earlier bundle (seq 5) is in place, so rollback cases have something to roll back to.
    first = make_bundle(tmp_path / "first", sk, seq=5, n=2, seed=9)
    assert import_bundle(cfg, conn, store, first, source="test").result == "imported"
    yield {"cfg": cfg, "conn": conn, "store": store, "sk": sk, "tmp": tmp_path}
    conn.close()


@pytest.mark.parametrize("name, code, mutate", CASES, ids=[c[0] for c in CASES])
def test_hostile_bundle_is_refused_and_changes_nothing(node, name, code, mutate):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=3, size=4096)
    mutate(bundle, sk, node)
    before = snapshot(conn, store)

    result = import_bundle(cfg, conn, store, bundle, source="test")

    assert result.result == "failed", name
    assert result.error_code == code, (name, result.error_code, result.error)
    assert result.error and len(result.error) > 10
    assert any("\u4e00" <= ch <= "\u9fff" for ch in result.error_zh), result.error_zh
    assert snapshot(conn, store) == before, f"{name}: store or catalogue changed"
    last = recent(conn, 1)[0]
    assert (last["result"], last["error_code"]) == ("failed", code)
    assert last["summary_zh"].startswith("导入失败")


def test_extra_unlisted_file_is_ignored(node):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=2)
    extra = bundle / "files" / "extra.pdf"
    extra.write_bytes(b"%PDF-1.4\nnot listed\n%%EOF\n")
    (bundle / "autorun.inf").write_text("[autorun]\nopen=evil.exe\n")
    result = import_bundle(cfg, conn, store, bundle, source="test")
    assert result.result == "imported" and result.resources == 2
    extra_sha = store.hash_file(extra)
    assert not store.has(extra_sha)
    ids = {r[0] for r in conn.execute("SELECT id FROM resources")}
    assert not any("extra" in i for i in ids)


def test_disk_full_during_copy_on_a_small_tmpfs(tmp_path):
    """A real filesystem fills up mid-copy (another writer takes the space): refused, nothing changed."""
    from edgenode.core.db import open_main
    from edgenode.core.store import open_store

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        cfg = make_config(mnt / "data", store__free_space_floor_mb=0)
        conn = open_main(cfg)
        store = open_store(cfg)
        sk = new_key(tmp_path)
        trust_key(conn, sk, "sannong")
        bundle = make_bundle(tmp_path, sk, seq=1, n=2, size=5 * 1024 * 1024 // 2)  # 5 MiB fits in 8 MiB at first
        before = snapshot(conn, store)
        filled = []

        def fill_disk(p):
            if p.phase == "copy" and p.bytes_done > 0 and not filled:
                filler = mnt / "filler"
                with open(filler, "wb") as f:  # another program takes nearly all the space now
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                    except OSError:
                        pass
                filled.append(filler)

        result = import_bundle(cfg, conn, store, bundle, source="test", progress=fill_disk)
        assert filled, "the import never reached the copy"
        assert (result.result, result.error_code) == ("failed", "E_DISK_FULL"), result
        assert "disk full while copying" in result.error, result.error
        assert snapshot(conn, store) == before
        # Once space is back, the same bundle imports.
        filled[0].unlink()
        assert import_bundle(cfg, conn, store, bundle, source="test").result == "imported"
        conn.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_identical_reimport_is_a_noop(node):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=2)
    assert import_bundle(cfg, conn, store, bundle, source="test").result == "imported"
    before = snapshot(conn, store)
    again = import_bundle(cfg, conn, store, bundle, source="test")
    assert again.result == "unchanged" and again.ok
    assert snapshot(conn, store) == before


def test_expired_bundle_only_warns(node):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=1, expires="2001-01-01T00:00:00Z")
    result = import_bundle(cfg, conn, store, bundle, source="test")
    assert result.result == "imported"
    assert any(w.startswith("W_EXPIRED") for w in result.warnings)


def test_channel_cannot_touch_other_channels_or_local_resources(node, media_dir):
    from edgenode.node.imports.add import add_file
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    add_file(conn, store, cfg, media_dir["pdf"], {"title": "本地", "column": "pushi"}, resource_id="sannong.doc000")
    before = snapshot(conn, store)
    bundle = make_bundle(node["tmp"], sk, seq=6, n=1)
    result = import_bundle(cfg, conn, store, bundle, source="test")
    assert result.error_code == "E_ID_CLASH"
    assert snapshot(conn, store) == before
    trust.add_key(conn, sk.public, ["shequ"])
    other = make_bundle(node["tmp"] / "o", sk, channel="shequ", seq=1, n=1)
    rewrite_manifest(other, sk, lambda d: (d.update(withdraw=["doc000"]), _first(d).update(id="other")))
    r = import_bundle(cfg, conn, store, other, source="test")
    assert r.result == "imported" and r.withdrawn == 0
    assert conn.execute("SELECT visible FROM resources WHERE id = 'sannong.doc000'").fetchone()[0] == 1


def test_update_and_withdraw_in_a_later_bundle(node):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    b6 = make_bundle(node["tmp"], sk, seq=6, n=2)
    assert import_bundle(cfg, conn, store, b6, source="test").resources == 2
    b7 = make_bundle(node["tmp"] / "7", sk, seq=7, n=1, seed=3)
    doc = rewrite_manifest(b7, sk, lambda d: d.update(withdraw=["doc001"]))
    r = import_bundle(cfg, conn, store, b7, source="test")
    assert (r.result, r.updated, r.withdrawn) == ("imported", 1, 1), r
    row = conn.execute("SELECT sha256, visible, source FROM resources WHERE id = 'sannong.doc000'").fetchone()
    assert (row[0], row[1], row[2]) == (doc["resources"][0]["sha256"], 1, "bundle:sannong:7")
    assert conn.execute("SELECT visible FROM resources WHERE id = 'sannong.doc001'").fetchone()[0] == 0
    kept = conn.execute("SELECT manifest, signature FROM bundles WHERE channel = 'sannong' AND seq = 7").fetchone()
    assert json.loads(kept[0])["seq"] == 7 and kept[1].startswith("untrusted comment:")


def test_blob_removed_by_a_concurrent_gc_before_commit_is_never_made_visible(node):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=2, seed=7)
    moves = []

    def rogue_gc(p):
        if p.phase == "move":
            moves.append(1)
            if len(moves) == 2:  # the first blob is in the store now, still unreferenced
                from edgenode.node.catalog import queries as q
                store.gc(q.referenced_hashes(conn), staging_older_than=3600)  # as `store gc` does

    before = snapshot(conn, store)[:3]
    r = import_bundle(cfg, conn, store, bundle, source="test", progress=rogue_gc)
    assert (r.result, r.error_code) == ("failed", "E_SOURCE_IO") and "vanished" in r.error, r
    assert snapshot(conn, store)[:3] == before
    r = import_bundle(cfg, conn, store, bundle, source="test")
    assert r.result == "imported"
