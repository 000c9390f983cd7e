"""The disk image, built and booted for real (slow: builds a Debian system, ~5-10 min).

images/build-image.sh makes the image; two copies of it boot in QEMU (TCG by default, KVM with
EDGENODE_QEMU_ACCEL=kvm; firmware from the ovmf package, ``-snapshot`` so each boot is a pristine clone).
Each must run its first boot with its own node id and then serve the portal
through nginx and the hardened edgenode-web unit under a real systemd.

    sudo .venv/bin/python -m pytest -m slow tests/test_image.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests import helpers_provisioning as hp
from tests.helpers_sync import free_port

OVMF = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(os.geteuid() != 0 or not OVMF.exists() or shutil.which("qemu-system-x86_64") is None,
                       reason="needs root, qemu-system-x86 and ovmf"),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    work = Path(os.environ.get("EDGENODE_IMAGE_WORK", "")) if os.environ.get("EDGENODE_IMAGE_WORK") \
        else tmp_path_factory.mktemp("image")
    out = work / "edgenode.img"
    if not out.exists():
        wheel = hp.build_edgenode_wheel(work / "dist")
        pw = work / "tech-pw.txt"
        pw.write_text("county-tech-2026\n")
        subprocess.run([str(hp.REPO / "images" / "build-image.sh"), "--tech-password-file", str(pw),
                        "--out", str(out), "--size", "6G", "--system-size", "3G",
                        "--wheel", str(wheel), "--wheelhouse", str(hp.wheelhouse()),
                        "--mirror", hp.mirror()], check=True, cwd=work)
    return out


def boot(img: Path, work: Path, timeout: float = 900) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    vars_ = work / "OVMF_VARS.fd"
    shutil.copy2(OVMF.with_name("OVMF_VARS_4M.fd"), vars_)
    port = free_port()
    serial = work / "serial.log"
    # TCG by default: this machine's nested KVM dies in OVMF's first x87 instruction.
    accel = ["-accel", "kvm", "-cpu", "host"] if os.environ.get("EDGENODE_QEMU_ACCEL") == "kvm" \
        else ["-accel", "tcg,thread=multi", "-cpu", "max"]
    qemu = subprocess.Popen([
        "qemu-system-x86_64", *accel, "-machine", "q35", "-m", "1536", "-smp", "2",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF}",
        "-drive", f"if=pflash,format=raw,file={vars_}",
        "-drive", f"file={img},format=raw,if=virtio", "-snapshot",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:80", "-device", "virtio-net-pci,netdev=n0",
        "-display", "none", "-monitor", "none", "-serial", f"file:{serial}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            if qemu.poll() is not None:
                raise AssertionError(f"qemu exited: {qemu.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    status, page = r.status, r.read().decode()
                    break
            except OSError:
                time.sleep(2)
        log = serial.read_text(errors="replace")
        assert status == 200, f"portal never answered; serial console:\n{log[-4000:]}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as r:
            health = r.read().decode()
        ids = re.findall(r"first boot done: node ([0-9a-f]{32})", log)
        return {"node_ids": ids, "page": page, "health": health, "log": log}
    finally:
        qemu.terminate()
        qemu.wait(timeout=30)


def test_two_copies_of_the_image_boot_with_distinct_identities_and_serve(tmp_path, image):
    a = boot(image, tmp_path / "a")
    b = boot(image, tmp_path / "b")
    assert len(a["node_ids"]) == 1 and len(b["node_ids"]) == 1, (a["log"][-3000:], b["log"][-3000:])
    assert a["node_ids"] != b["node_ids"]
    for boot_ in (a, b):
        assert "<html" in boot_["page"].lower()
        assert '"ok": true' in boot_["health"].replace('"ok":true', '"ok": true')
