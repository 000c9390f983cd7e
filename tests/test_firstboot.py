"""First boot of a cloned image: every copy gets its own node id, key and SSH host keys.

The image tree is what images/build-image.sh puts on the system partition:
provisioning/install.sh --image run in a chroot.  Booting is impossible here, so
the first-boot step (provisioning/firstboot.sh, the ExecStart of
edgenode-firstboot.service) runs in two chroot copies of that one tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import helpers_provisioning as hp

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for overlay mounts and chroot"),
    pytest.mark.timeout(600),
]
FIRSTBOOT = "/opt/edgenode/share/provisioning/firstboot.sh"


@pytest.fixture(scope="module", params=hp.base_param())
def image(tmp_path_factory, request):
    """The system tree of a freshly built image (kept mounted as a lower layer for the copies)."""
    base = request.param
    work = tmp_path_factory.mktemp("image")
    wheel = hp.build_edgenode_wheel(work / "dist")
    root = hp.new_root(base, work / "r", keep_upper=True)
    try:
        with root:
            opts = hp.prepare(root, wheel, hp.wheelhouse())
            out = root.run(hp.INSTALLER, "--image", *opts)
            assert not list((root.path / "etc/ssh").glob("ssh_host_*")), "the image must not carry SSH host keys"
            hp.check_installed(root, work / "look", image=True)
        yield root.upper, out, base
    finally:
        root.discard()


def boot(image_upper: Path, base: str, work: Path) -> dict:
    with hp.new_root(base, work, over=image_upper) as copy:
        first = copy.run(FIRSTBOOT)
        r = copy.path
        ident = r / "var/lib/edgenode/identity"
        facts = {
            "node_id": (ident / "node_id").read_text().strip(),
            "key": (ident / "node.key").read_bytes(),
            "ssh": {p.name: p.read_bytes() for p in (r / "etc/ssh").glob("ssh_host_*_key.pub")},
            "public": copy.run("runuser", "-u", "edgenode", "--", "/opt/edgenode/bin/edgenode",
                               "identity", "show", "--json").stdout,
            "stdout": first.stdout,
        }
        user = hp.passwd_entry(copy, "edgenode")
        st = os.stat(ident / "node.key")
        assert (st.st_uid, oct(st.st_mode & 0o777)) == (int(user[2]), "0o600")
        assert not (r / "var/lib/edgenode/.firstboot").exists(), "the marker must go, or every boot resets"
        # A second boot of the same copy keeps its identity.
        again = copy.run(FIRSTBOOT)
        assert "nothing to do" in again.stdout
        assert (ident / "node_id").read_text().strip() == facts["node_id"]
        # The technician's step at the console then works on this copy.
        setup = copy.run("/usr/local/sbin/edgenode-setup", "--name", "某某村文化服务点")
        assert facts["node_id"] in setup.stdout and "Password:" in setup.stdout
    return facts


def test_image_has_no_identity_and_enables_first_boot(image):
    upper, out, _ = image
    assert "first boot makes the identity" in out.stdout
    assert not (upper / "var/lib/edgenode/identity/node_id").exists()
    assert (upper / "etc/systemd/system/multi-user.target.wants/edgenode-firstboot.service").is_symlink()


def test_two_cloned_first_boots_give_distinct_identities(tmp_path, image):
    upper, _, base = image
    a = boot(upper, base, tmp_path / "a")
    b = boot(upper, base, tmp_path / "b")
    assert len(a["node_id"]) == 32 and len(b["node_id"]) == 32
    assert a["node_id"] != b["node_id"]
    assert a["key"] != b["key"] and a["public"] != b["public"]
    assert a["ssh"] and set(a["ssh"]) == set(b["ssh"])  # same key types ...
    assert all(a["ssh"][k] != b["ssh"][k] for k in a["ssh"])  # ... different keys
