"""Releases for the update tests: keys, a small signed release, and (costly, once) real wheels.

``small_release`` packs a fake wheel and one fake dependency: enough for the signature, key,
version and hash rules.  ``real_wheels`` builds edgenode's wheel once per session and N+1 by a
version bump of the same source; dependencies come from the cached wheelhouse
(tests/helpers_provisioning.wheelhouse).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from edgenode.protocol import minisign
from edgenode.protocol.release import build_release


def keys(d: Path) -> dict:
    """A release key (software only), a content key, an unknown key; written as files too."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("release", "content", "stranger"):
        sk = minisign.generate_keypair()
        minisign.write_secret_key(sk, d / f"{name}.key")
        minisign.write_public_key(sk.public, d / f"{name}.pub")
        out[name] = sk
    return out


def small_release(out: Path, sk, version: str) -> Path:
    """A release with a stand-in wheel and one locked stand-in dependency (not installable)."""
    work = out / f".src-{version}"
    (work / "wh").mkdir(parents=True, exist_ok=True)
    wheel = work / f"edgenode-{version}-py3-none-any.whl"
    wheel.write_bytes(b"stand-in wheel " + version.encode())
    dep = work / "wh" / "tiny-1.0-py3-none-any.whl"
    dep.write_bytes(b"tiny dependency")
    lock = work / "node.lock"
    lock.write_text(f"tiny==1.0 \\\n    --hash=sha256:{hashlib.sha256(dep.read_bytes()).hexdigest()}\n")
    return build_release(out, sk, wheel=wheel, lock=lock, wheelhouse=work / "wh")


def tiny_deb(out: Path, package: str, version: str, depends: str | None = None) -> Path:
    """A real Debian package of one small file, built with ``dpkg-deb --build``."""
    import subprocess
    src = out / f".deb-{package}-{version}"
    (src / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (src / "usr" / "share" / package).mkdir(parents=True, exist_ok=True)
    (src / "usr" / "share" / package / "version").write_text(version + "\n")
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: edgenode tests "
               f"<tests@edgenode.invalid>\nDescription: a test package of one file\n")
    (src / "DEBIAN" / "control").write_text(control + (f"Depends: {depends}\n" if depends else ""))
    deb = out / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(src), str(deb)], check=True,
                   capture_output=True)
    return deb


def scratch_dpkg_root(root: Path) -> Path:
    """An empty dpkg database for ``updates.dpkg_root`` (``dpkg --root``): the tests never touch the
    machine's own."""
    admin = root / "var" / "lib" / "dpkg"
    for d in ("info", "updates", "triggers"):
        (admin / d).mkdir(parents=True, exist_ok=True)
    for f in ("status", "available"):
        (admin / f).touch()
    return root


def dpkg_status(root: Path, package: str) -> str:
    """``<status>\t<version>`` of a package in a dpkg root, or "" when dpkg does not know it."""
    import subprocess
    res = subprocess.run(["dpkg-query", f"--root={root}", "--show", "--showformat=${Status}\t${Version}", package],
                         capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


def bump_version(version: str):
    """A patch for helpers_provisioning.build_edgenode_wheel: the same source as another version."""
    def patch(src: Path) -> None:
        init = src / "edgenode" / "__init__.py"
        init.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', init.read_text()))
    return patch


def bumped_wheel(wheel: Path, version: str, dest: Path, edit=None) -> Path:
    """The same wheel as another version (and ``edit(name, text) -> text`` applied to its .py files):
    a version bump of the same source without a second ``pip wheel`` (seconds each)."""
    import base64
    import zipfile

    old = wheel.name.split("-")[1]
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / wheel.name.replace(f"-{old}-", f"-{version}-")
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename.replace(f"edgenode-{old}.dist-info/", f"edgenode-{version}.dist-info/")
            data = z.read(info)
            if name == "edgenode/__init__.py":
                data = re.sub(rb'__version__ = "[^"]+"', f'__version__ = "{version}"'.encode(), data)
            elif name.endswith("dist-info/METADATA"):
                data = data.replace(f"Version: {old}\n".encode(), f"Version: {version}\n".encode(), 1)
            if edit and name.endswith(".py"):
                data = edit(name, data.decode()).encode()
            files[name] = data
    record = next(n for n in files if n.endswith("dist-info/RECORD"))
    lines = []
    for name, data in files.items():
        if name == record:
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(data)}")
    files[record] = ("\n".join(lines + [f"{record},,"]) + "\n").encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


def copy_release(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# -- real nodes --------------------------------------------------------------------------------
import json as _json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _sid(pid: int) -> int | None:
    """The session of ``pid`` (``/proc/PID/stat`` after the command's ")": state ppid pgrp session ...)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def node_pids(marker: str) -> list[int]:
    """Every process whose command line or environment names this node's directory, and every process of
    their sessions (nginx's workers carry neither: nginx clears their environment): the node's whole tree."""
    found, sids, ours = [], set(), os.getsid(0)
    procs = [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and int(d.name) != os.getpid()]
    for pid in procs:
        try:
            blob = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(pid)
            sids.add(_sid(pid))
    # Only sessions a node process leads (nginx's master starts one): never the test's own, where its
    # `edgenode` calls run, nor any other.
    sids = {sid for sid in sids if sid in found and sid != ours}
    return sorted(set(found) | {pid for pid in procs if pid not in found and _sid(pid) in sids})


def _same_fs(a: Path, b: Path) -> bool:
    """Hard links only within one filesystem (a node on its own disk image gets a copy)."""
    return a.stat().st_dev == b.stat().st_dev


def _away() -> str:
    """Update hours that do not include now: the tests call ``update apply`` themselves, and the live
    scheduler must not start a second updater beside it."""
    h = (time.localtime().tm_hour + 12) % 24
    return f"{h:02d}:00-{h:02d}:30"


class NodeUnderTest:
    """A node as an installed one runs: release venvs, a ``current`` link, nginx + gunicorn + scheduler."""

    def __init__(self, root: Path, port: int, release_key_pub: Path, *, hours: str | None = None,
                 extra: str = "", netns: str | None = None, host: str = "127.0.0.1"):
        self.root, self.port = Path(root), port
        self.wrap = ["ip", "netns", "exec", netns] if netns else []
        self.host = host
        self.data = self.root / "data"
        self.sock = self.root / "sup.sock"
        self.config = self.root / "edgenode.toml"
        self.root.mkdir(parents=True, exist_ok=True)
        self.dpkg_root = scratch_dpkg_root(self.root / "dpkg")  # a release's packages go here, not into the host
        ctl = f"{sys.executable} {REPO / 'tests' / 'node_supervisor.py'} ctl {self.sock}"
        self.config.write_text(
            f'data_dir = "{self.data}"\n[discovery]\nenabled = false\n[updates]\n'
            f'releases_dir = "{self.root / "releases"}"\ncurrent_link = "{self.root / "current"}"\n'
            f'python = "{sys._base_executable}"\nstop_command = "{ctl} stop"\nstart_command = "{ctl} start"\n'
            f'launcher = "detach"\nportal_url = "http://127.0.0.1:{port}/"\ngate_seconds = 60.0\n'
            f'hours = ["{hours or _away()}"]\ndpkg_root = "{self.dpkg_root}"\n{extra}', encoding="utf-8")
        from edgenode.core.config import load_config
        self.cfg = load_config(self.config, env={})
        self.release_key_pub = release_key_pub
        self.proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGENODE_")}
        return {**env, "EDGENODE_CONFIG": str(self.config)}

    def install(self, release_dir: Path, deps_cache: Path | None = None) -> Path:
        """Install release N as provisioning would: build, link, create the database, trust the release key."""
        from edgenode.node.updates import releases
        from edgenode.protocol.release import parse
        data = (release_dir / "release.json").read_bytes()
        import hashlib
        rel = parse(data, hashlib.sha256(data).hexdigest())
        if deps_cache is not None and deps_cache.exists():
            dest = Path(self.cfg["updates.releases_dir"]) / deps_cache.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al" if _same_fs(deps_cache, dest.parent) else "-a", str(deps_cache), str(dest)],
                           check=True)
        target = releases.build(self.cfg, rel, release_dir)
        releases.switch(self.cfg, target)
        self.edgenode("db", "check")
        if self.release_key_pub is not None:  # else the key arrives in the hub's key list at enrolment
            self.edgenode("trust", "add", str(self.release_key_pub), "--channel", "software")
        return target

    def edgenode(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        res = subprocess.run([*self.wrap, str(self.root / "current" / "bin" / "edgenode"), *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode:
            raise RuntimeError(f"edgenode {' '.join(args)}: {res.stderr or res.stdout}")
        return res

    def boot(self, timeout: float = 60, wait: bool = True) -> None:
        self.proc = subprocess.Popen([*self.wrap, sys.executable, str(REPO / "tests" / "node_supervisor.py"), "run",
                                      str(self.config), str(self.sock), str(self.port)], env=self.env,
                                     cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if wait:
            self.wait_portal(timeout)

    def wait_portal(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.portal_status() == 200:
                return
            time.sleep(0.2)
        raise TimeoutError(f"portal on {self.port} did not answer 200")

    def portal_status(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.port}/", timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def power_cut(self) -> None:
        """Every process of this node dies at once: supervisor, nginx, gunicorn, scheduler, updater."""
        for _ in range(3):
            pids = node_pids(str(self.root))
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not pids:
                break
            time.sleep(0.2)
        if self.proc:
            self.proc.wait()

    def state(self) -> dict:
        try:
            return _json.loads((self.data / "updates" / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def running_version(self) -> str:
        return Path(os.path.realpath(self.root / "current")).name.split("-")[0]
