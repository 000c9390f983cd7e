"""USB sticks as real loop-device filesystems: read-only mount, system disks refused,
junk ignored, the mount-table watcher, and a stick pulled mid-import."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgenode.node.imports.pipeline import import_bundle
from edgenode.core.db import open_main
from edgenode.node.sources import usb
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.helpers_bundles import check_consistent, make_bundle, new_key, snapshot, trust_key

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("losetup"), reason="needs root and losetup")


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


class Stick:
    """An ext4 image on a loop device: the closest thing to a USB stick a test can plug in."""

    def __init__(self, tmp: Path, size_mb: int = 32):
        self.image = tmp / "stick.img"
        with open(self.image, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        sh("mkfs.ext4", "-q", "-F", str(self.image))
        self.dev = sh("losetup", "-f", "--show", str(self.image))
        self.mounts: list[Path] = []

    def mount(self, where: Path, *opts: str) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        sh("mount", *(["-o", ",".join(opts)] if opts else []), self.dev, str(where))
        self.mounts.append(where)
        return where

    def umount(self, where: Path, lazy: bool = False) -> None:
        subprocess.run(["umount", *(["-l"] if lazy else []), str(where)], check=False, capture_output=True)

    def close(self):
        for m in self.mounts:
            self.umount(m, lazy=True)
        subprocess.run(["losetup", "-d", self.dev], check=False, capture_output=True)


@pytest.fixture
def node(tmp_path):
    cfg = make_config(tmp_path / "data", store__free_space_floor_mb=0,
                      usb__media_roots=[str(tmp_path / "media")], usb__mount_dir=str(tmp_path / "run-usb"))
    conn = open_main(cfg)
    store = open_store(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    yield {"cfg": cfg, "conn": conn, "store": store, "sk": sk, "tmp": tmp_path}
    conn.close()


@pytest.fixture
def stick(tmp_path):
    s = Stick(tmp_path)
    yield s
    s.close()


def _load(stick: Stick, node, n=2, size=50_000, seq=1) -> Path:
    """Write a bundle plus OS junk onto the stick, then unmount it."""
    w = stick.mount(node["tmp"] / "writer")
    top = w / "EDGENODE-BUNDLES"  # FAT sticks shout; matched ignoring case
    bundle = make_bundle(node["tmp"] / f"pub{seq}", node["sk"], seq=seq, n=n, size=size, seed=seq)
    shutil.copytree(bundle, top / bundle.name)
    (w / "System Volume Information").mkdir()
    (w / "System Volume Information" / "manifest.json").write_text("{}")
    (top / ".Trashes").mkdir()
    (top / ".Trashes" / "manifest.json").write_text("{}")
    (top / "Thumbs.db").write_bytes(b"junk")
    (top / "._macos-junk").mkdir()
    (w / "autorun.inf").write_text("[autorun]\n")
    stick.umount(w)
    stick.mounts.remove(w)
    return bundle


@needs_root
def test_udev_path_mounts_read_only_nosuid_nodev_noexec(node, stick):
    _load(stick, node)
    seen = []

    def watch_mount(p):
        for m in usb.read_mounts():
            if m.mountpoint.startswith(str(node["tmp"] / "run-usb")):
                seen.append(set(m.options.split(",")))

    results = usb.import_device(node["cfg"], node["conn"], node["store"], Path(stick.dev).name,
                                progress=watch_mount)
    assert [r.result for r in results] == ["imported"]  # junk folders were never taken for bundles
    assert results[0].source == f"usb:{Path(stick.dev).name}"
    assert seen and {"ro", "nosuid", "nodev", "noexec"} <= seen[0]
    assert not any(m.mountpoint.startswith(str(node["tmp"] / "run-usb")) for m in usb.read_mounts())
    check_consistent(node["conn"], node["store"])


@needs_root
def test_system_and_data_disks_are_never_sticks(node, stick, tmp_path):
    root_dev = next(m for m in usb.read_mounts() if m.mountpoint == "/")
    disk = usb.disk_of(root_dev.majmin)
    if os.path.exists(f"/dev/{disk}"):
        with pytest.raises(usb.BundleError) as e:
            usb.check_device(node["cfg"], disk)
        assert e.value.code == "E_USB_SYSTEM_DISK"
    # A disk holding the data directory is refused too.
    data_mnt = stick.mount(tmp_path / "datadisk")
    cfg = make_config(data_mnt / "data", usb__media_roots=[str(tmp_path / "media")])
    with pytest.raises(usb.BundleError) as e:
        usb.check_device(cfg, Path(stick.dev).name)
    assert e.value.code == "E_USB_SYSTEM_DISK"
    with pytest.raises(usb.BundleError) as e:
        usb.check_device(cfg, "../../etc/passwd")
    assert e.value.code == "E_USB_BAD_DEVICE"


@needs_root
def test_watcher_imports_automounted_stick_once_and_ignores_system_disk(node, stick):
    _load(stick, node)
    media = node["tmp"] / "media"
    stick.mount(media / "volunteer", "ro")
    # A folder of the system disk bind-mounted under the media root is not a stick.
    fake = node["tmp"] / "on-system-disk"
    shutil.copytree(node["tmp"] / "pub1" / "out", fake / "edgenode-bundles")
    bind = media / "bound"
    bind.mkdir(parents=True)
    sh("mount", "--bind", str(fake), str(bind))
    stick.mounts.append(bind)
    try:
        seen = {}
        usb.watch(node["cfg"], node["conn"], node["store"], once=True,
                  on_results=lambda mp, rs: seen.setdefault(mp, rs))
        assert list(seen) == [str(media / "volunteer")]
        assert [r.result for r in seen[str(media / "volunteer")]] == ["imported"]
    finally:
        stick.umount(bind)


@needs_root
def test_stick_pulled_mid_import_leaves_node_consistent_and_resumable(node, stick):
    conn, store, cfg = node["conn"], node["store"], node["cfg"]
    _load(stick, node, n=4, size=1_000_000)
    mnt = stick.mount(node["tmp"] / "media" / "stick", "ro")
    bundle = mnt / "EDGENODE-BUNDLES" / "sannong-00000001"
    before = snapshot(conn, store)[:3]
    pulled = []

    def pull(p):
        if p.phase == "staged" and p.files_done == 2 and not pulled:
            stick.umount(mnt, lazy=True)  # the volunteer pulls the stick
            pulled.append(True)

    r = import_bundle(cfg, conn, store, bundle, source="usb:test", progress=pull)
    assert pulled and (r.result, r.error_code) == ("failed", "E_SOURCE_IO"), r
    assert "U 盘" in r.error_zh
    assert snapshot(conn, store)[:3] == before  # catalogue, blobs table and channel state untouched
    check_consistent(conn, store)
    staged = [p for p in store.staging.rglob("*") if p.is_file()]
    assert len(staged) == 2  # kept for the resume

    # Plugged in again: the import resumes, re-hashing (not trusting) the staged files.
    stick.mount(mnt, "ro")
    r = import_bundle(cfg, conn, store, bundle, source="usb:test")
    assert (r.result, r.files_skipped, r.files_copied) == ("imported", 2, 2), r
    check_consistent(conn, store)
    assert not [p for p in store.staging.rglob("*") if p.is_file()]


def test_source_deleted_mid_import_is_resumable(node):
    conn, store, cfg = node["conn"], node["store"], node["cfg"]
    bundle = make_bundle(node["tmp"], node["sk"], seq=1, n=3, size=100_000)
    backup = node["tmp"] / "backup"
    shutil.copytree(bundle, backup)

    def vanish(p):
        if p.phase == "staged" and p.files_done == 1 and bundle.exists():
            shutil.rmtree(bundle)

    r = import_bundle(cfg, conn, store, bundle, source="test", progress=vanish)
    assert r.error_code == "E_SOURCE_IO", r
    check_consistent(conn, store)
    shutil.copytree(backup, bundle)
    r = import_bundle(cfg, conn, store, bundle, source="test")
    assert (r.result, r.files_skipped) == ("imported", 1)


REPO = Path(__file__).resolve().parent.parent


def test_udev_rule_starts_the_templated_service_which_mounts_read_only(tmp_path):
    rule = (REPO / "systemd" / "99-edgenode-usb.rules").read_text()
    assert 'ENV{SYSTEMD_WANTS}+="edgenode-usb@%k.service"' in rule
    rules = [ln for ln in rule.replace("\\\n", " ").splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(rules) == 1 and "RUN+=" not in rules[0]  # long imports never run inside udev
    unit = (REPO / "systemd" / "edgenode-usb@.service").read_text()
    assert "ExecStartPre=+/opt/edgenode/bin/edgenode usb mount %I" in unit
    assert "ExecStart=/opt/edgenode/bin/edgenode usb import /run/edgenode/usb/%I" in unit
    assert "BindsTo=dev-%i.device" in unit
    # The mount options live in usb.mount_device; the test above watches them in the mount table.
    import inspect
    assert '"ro,nosuid,nodev,noexec"' in inspect.getsource(usb.mount_device)
    # The unit parses, with the real CLI in place of the installed one.
    venv_cli = Path(os.sys.executable).with_name("edgenode")
    if shutil.which("systemd-analyze") and venv_cli.exists():
        inst = tmp_path / "edgenode-usb@sdb1.service"
        inst.write_text(unit.replace("/opt/edgenode/bin/edgenode", str(venv_cli)))
        r = subprocess.run(["systemd-analyze", "verify", str(inst)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "edgenode-usb@sdb1" not in r.stderr, r.stderr


def test_the_service_commands_exist(runner):
    for args in (["usb", "mount", "--help"], ["usb", "import", "--help"], ["usb", "unmount", "--help"]):
        r = runner(*args)
        assert r.exit_code == 0, (args, r.output)


def test_the_watcher_lives_through_a_bug_and_the_health_snapshot_says_so(node, monkeypatch):
    """A bug on one stick: logged, recorded as usb_watch failed, and the next stick is still handled."""
    from types import SimpleNamespace

    from edgenode.node.health.snapshot import snapshot

    mounts = [SimpleNamespace(majmin="8:17", mountpoint="/media/a"), SimpleNamespace(majmin="8:33", mountpoint="/media/b")]
    monkeypatch.setattr(usb, "stick_mounts", lambda cfg: mounts)
    handled = []

    def import_mount(cfg, conn, store, mountpoint, *, source, progress=None):
        handled.append(mountpoint)
        if mountpoint == "/media/a":
            raise KeyError("a bug")
        return []

    monkeypatch.setattr(usb, "import_mount", import_mount)
    usb.watch(node["cfg"], node["conn"], node["store"], once=True)
    assert handled == ["/media/a", "/media/b"]
    watcher = snapshot(node["cfg"], node["conn"], fresh=True)["sync"]["jobs"]["usb_watch"]
    assert watcher["last_error"] and "E_INTERNAL" in watcher["last_error"]["message"]
    assert watcher["last_success"] is not None  # the second stick, after the failure
