"""The Debian packages a release carries: installed with dpkg, only when missing or older, once.

Real packages built by ``dpkg-deb --build``, a real ``dpkg --install`` into a scratch root
(``updates.dpkg_root``: ``dpkg --root``), never into this machine's own dpkg database, which
other engineers' apt runs share.  The whole update with a package (installed before the switch,
and a package that cannot install stopping the update) is in tests/test_updates_node.py.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from edgenode.node.updates import debs
from edgenode.protocol.release import build_release, parse
from tests.conftest import make_config
from tests.helpers_updates import dpkg_status, keys, scratch_dpkg_root, tiny_deb

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dpkg --install needs root, even into a scratch root")
PKG = f"u22node-tiny-{os.getpid()}"


@pytest.fixture
def env(tmp_path):
    root = scratch_dpkg_root(tmp_path / "dpkgroot")
    cfg = make_config(tmp_path / "node", updates__dpkg_root=str(root))
    sk = keys(tmp_path / "keys")["release"]
    n = iter(range(100))

    def release(*deb_files):
        """A signed release carrying these packages (a stand-in wheel: only the packages matter here)."""
        work = tmp_path / f"rel{next(n)}"
        (work / "wh").mkdir(parents=True)
        wheel = work / "edgenode-0.9.1-py3-none-any.whl"
        wheel.write_bytes(b"stand-in")
        lock = work / "node.lock"
        lock.write_text("")
        out = build_release(work / "out", sk, wheel=wheel, lock=lock, wheelhouse=work / "wh", debs=deb_files)
        data = (out / "release.json").read_bytes()
        return parse(data, hashlib.sha256(data).hexdigest()), out

    return cfg, root, release, tmp_path


def _log_lines(root) -> int:
    log = root / "var" / "log" / "dpkg.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_release_s_package_is_installed_once(env):
    cfg, root, release, tmp = env
    rel, d = release(tiny_deb(tmp / "debs", PKG, "1.0"))
    assert [p.name for p in debs.pending(cfg, rel, d)] == [f"{PKG}_1.0_all.deb"]
    assert debs.install(cfg, rel, d) == [f"{PKG}_1.0_all.deb"]
    assert dpkg_status(root, PKG) == "install ok installed\t1.0"
    assert (root / "usr" / "share" / PKG / "version").read_text() == "1.0\n"
    runs = _log_lines(root)
    assert debs.pending(cfg, rel, d) == [] and debs.install(cfg, rel, d) == []  # applied again: nothing
    assert _log_lines(root) == runs, "dpkg ran again for a package already installed"


def test_only_missing_or_older_packages_are_installed(env):
    cfg, root, release, tmp = env
    other = f"{PKG}-b"
    debs.install(cfg, *release(tiny_deb(tmp / "d1", PKG, "1.1")))
    # 1.0 is older than what is installed: kept at 1.1; 1.2 of the other is missing: installed
    rel, d = release(tiny_deb(tmp / "d2", PKG, "1.0"), tiny_deb(tmp / "d2", other, "1.2"))
    assert debs.install(cfg, rel, d) == [f"{other}_1.2_all.deb"]
    assert dpkg_status(root, PKG) == "install ok installed\t1.1"
    rel, d = release(tiny_deb(tmp / "d3", PKG, "1.1+deb12u1"))  # a security update: newer, installed
    assert debs.install(cfg, rel, d) == [f"{PKG}_1.1+deb12u1_all.deb"]
    assert dpkg_status(root, PKG) == "install ok installed\t1.1+deb12u1"


@pytest.mark.parametrize("kind", ["missing dependency", "not a package"])
def test_a_package_that_cannot_install_fails_with_its_code(env, kind):
    cfg, root, release, tmp = env
    if kind == "missing dependency":  # no network: dpkg cannot fetch it, and says so
        deb, said = tiny_deb(tmp / "debs", PKG, "2.0", depends=f"{PKG}-absent"), "dependency problems"
    else:
        deb, said = tmp / "junk.deb", "not a Debian package"
        deb.write_bytes(b"!<arch>\nnot really")
    rel, d = release(deb)
    with pytest.raises(Exception) as e:
        debs.install(cfg, rel, d)
    assert getattr(e.value, "code", None) == "E_UPDATE_DEB" and said in e.value.message, e.value
    assert not dpkg_status(root, PKG).startswith("install ok installed")
