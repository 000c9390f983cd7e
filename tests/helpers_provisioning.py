"""Roots to run the installer in, for tests/test_provisioning.py and tests/test_firstboot.py.

Two kinds of root, both mounted as an overlay so each test gets a private,
instantly made copy and its changes are exactly the overlay's upper directory:

* ``host_root``: the host's own Debian 12 system as the lower layer (the fast
  form CI runs every time: same installer, same chroot, no download).
* ``debootstrap_root``: a Debian 12 minbase root built once with debootstrap
  and cached under ``/var/cache/edgenode-test/`` keyed by a hash of its inputs
  (the full form, ``pytest -m slow``).

Run this module to build the cached debootstrap root ahead of time::

    .venv/bin/python tests/helpers_provisioning.py
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("EDGENODE_TEST_CACHE", "/var/cache/edgenode-test"))
SUITE = "bookworm"
VARIANT = "minbase"
# Extra packages the test root needs beyond the node's own list: systemctl for
# `enable` inside the chroot, and the tools the installer itself calls.
TEST_EXTRAS = ["systemd", "dbus", "passwd", "procps", "openssh-server"]
# Left out of the cached root on purpose, so the installer's package step really
# runs apt-get inside the chroot.
LEFT_FOR_INSTALLER = ["minisign"]


def mirror() -> str:
    """The Debian mirror this machine's apt uses, so the chroot sees the same archive."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and words[1].rstrip("/").endswith("/debian"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and words[-2:-1] != [] and "/debian" in line \
                    and "security" not in line and "bookworm" in words:
                return next(w for w in words[1:] if w.startswith("http"))
    return "http://deb.debian.org/debian"


def node_packages() -> list[str]:
    lines = (REPO / "provisioning" / "node-packages.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def base_packages() -> list[str]:
    return [p for p in node_packages() + TEST_EXTRAS if p not in LEFT_FOR_INSTALLER]


def base_key() -> str:
    inputs = [SUITE, VARIANT, mirror(), *sorted(base_packages()), "v1"]
    return hashlib.sha256("\n".join(inputs).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one builder; other xdist workers wait for it
        yield


def debootstrap_base(log=sys.stderr) -> Path:
    """The cached Debian 12 root (built on first use, minutes; then reused)."""
    target = CACHE / f"bookworm-{base_key()}"
    if (target / ".complete").exists():
        return target
    with _lock(CACHE / ".build.lock"):
        if (target / ".complete").exists():
            return target
        tmp = CACHE / f".building-{base_key()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        include = ",".join(base_packages())
        start = time.monotonic()
        subprocess.run(["debootstrap", f"--variant={VARIANT}", f"--include={include}", SUITE, str(tmp), mirror()],
                       check=True, stdout=log, stderr=log)
        # Keep the cache small and the copies quick: the .debs are not needed again.
        subprocess.run(["chroot", str(tmp), "apt-get", "clean"], check=True)
        (tmp / ".complete").write_text(f"built in {time.monotonic() - start:.0f}s\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    return target


def wheelhouse(log=sys.stderr) -> Path:
    """Wheels of every locked dependency, fetched on the host, so the chroot needs no PyPI.

    Cached by the hash of requirements/node.lock; edgenode's own wheel is built apart
    (build_edgenode_wheel) because the code under test changes.
    """
    key = hashlib.sha256((REPO / "requirements" / "node.lock").read_bytes()).hexdigest()[:16]
    deps = CACHE / f"wheels-{key}"
    pip = [str(REPO / ".venv" / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    with _lock(CACHE / ".wheels.lock"):
        if not (deps / ".complete").exists():
            tmp = CACHE / f".wheels-building-{key}"
            shutil.rmtree(tmp, ignore_errors=True)
            # The very files the lock's hashes name, as install.sh will check them.
            subprocess.run(pip + ["download", "--require-hashes", "--no-deps", "-d", str(tmp), "-r",
                                  str(REPO / "requirements" / "node.lock")], check=True, stdout=log, stderr=log)
            (tmp / ".complete").touch()
            shutil.rmtree(deps, ignore_errors=True)
            tmp.rename(deps)
    return deps


def build_edgenode_wheel(dest: Path, patch=None, log=sys.stderr) -> Path:
    """Build edgenode's wheel from a copy of the sources (pip builds in-tree: keep the shared checkout clean).

    ``patch(src_dir)`` may change the copy first, e.g. to make a "next release" with a new migration.
    """
    dest.mkdir(parents=True, exist_ok=True)
    src = dest / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir()
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "edgenode", src / "edgenode", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if patch:
        patch(src)
    subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check",
                    "wheel", "--no-deps", "-w", str(dest), str(src)], check=True, stdout=log, stderr=log)
    shutil.rmtree(src)
    checkout_snapshot(dest / "checkout")
    (wheel,) = dest.glob("edgenode-*.whl")
    return wheel


def checkout_snapshot(dest: Path) -> Path:
    """The installer's side of the checkout (scripts, units, docs), frozen for this test run.

    Other engineers edit the shared checkout while tests run; the installer must see
    one consistent version, the one the wheel was built with.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("setup.cfg", "setup.py", "pyproject.toml"):
        shutil.copy2(REPO / name, dest / name)
    for d in ("provisioning", "systemd", "requirements"):
        shutil.copytree(REPO / d, dest / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (dest / "docs").mkdir()
    if (REPO / "docs" / "operations.md").exists():
        shutil.copy2(REPO / "docs" / "operations.md", dest / "docs" / "operations.md")
    return dest


if __name__ == "__main__":
    print(debootstrap_base())
    print(wheelhouse())


class Root:
    """A private copy-on-write root: an overlay of ``lower`` with its own upper directory.

    ``run`` executes a command chrooted into it with /proc and /dev, like a
    freshly installed PC whose systemd is not running.  ``upper`` holds exactly
    what the commands changed.
    """

    def __init__(self, lower: Path | list[Path], work: Path, *, keep_upper: bool = False):
        # Several lowers stack (first is on top): an installed tree over the base root.
        self.lower = ":".join(str(p) for p in (lower if isinstance(lower, list) else [lower]))
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self._mounts: list[Path] = []
        # The upper layer lives on its own tmpfs: overlayfs refuses a layer that lies
        # inside another layer of the same filesystem, and the host root is a layer.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(self.work)], check=True)
        self._keep = keep_upper
        self.upper = self.work / "upper"
        self.upper.mkdir()
        (self.work / "ovlwork").mkdir()
        self.path = self.work / "root"
        self.path.mkdir()
        self._mount(["-t", "overlay", "overlay", "-o",
                     f"lowerdir={self.lower},upperdir={self.upper},workdir={self.work / 'ovlwork'}"], self.path)
        self._mount(["-t", "proc", "proc"], self.path / "proc")
        self._mount(["--bind", "/dev"], self.path / "dev")
        self._mount(["-t", "tmpfs", "tmpfs"], self.path / "run")  # no /run/systemd/system: systemd is not running
        self._mount(["-t", "tmpfs", "tmpfs"], self.path / "tmp")

    def _mount(self, args: list[str], target: Path) -> None:
        subprocess.run(["mount", *args, str(target)], check=True)
        self._mounts.append(target)

    def bind(self, source: Path, inside: str, readonly: bool = True) -> str:
        """Make a host directory visible at ``inside`` (a path in the root); returns that path."""
        target = self.path / inside.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        self._mount(["--bind", str(source)], target)
        if readonly:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        return inside

    def run(self, *cmd: str, timeout: float = 600, check: bool = True, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        environ = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                   "HOME": "/root", "PIP_CONFIG_FILE": "/dev/null", **(env or {})}
        result = subprocess.run(["chroot", str(self.path), *cmd], capture_output=True, text=True, timeout=timeout,
                                env=environ, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
                                 f"--- stderr\n{result.stderr}")
        return result

    def popen(self, *cmd: str, env: dict | None = None) -> subprocess.Popen:
        environ = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                   "HOME": "/root", "PIP_CONFIG_FILE": "/dev/null", **(env or {})}
        return subprocess.Popen(["chroot", str(self.path), *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=environ, start_new_session=True)

    def close(self) -> None:
        """Unmount the root; with ``keep_upper`` its upper layer stays (a lower for later roots) until discard()."""
        for target in reversed(self._mounts):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(target)], check=False)
        self._mounts.clear()
        if not self._keep:
            self.discard()

    def discard(self) -> None:
        if subprocess.run(["umount", str(self.work)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(self.work)], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Paths whose content is allowed to differ between runs: logs, the state file,
# caches, and SQLite's transient side files.
VOLATILE = ("var/log/", "var/cache/", "etc/edgenode/install-state", "etc/ld.so.cache", "root/.cache/")
VOLATILE_SUFFIX = ("-wal", "-shm", ".pyc")


def tree_digest(upper: Path, skip=()) -> dict[str, str]:
    """path -> 'type mode uid gid sha256-or-target' for every entry the commands changed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(upper))
            if rel.startswith(VOLATILE) or rel.endswith(VOLATILE_SUFFIX) or (rel + "/").startswith(tuple(skip)) \
                    or "/__pycache__" in rel:
                continue
            st = os.lstat(p)
            meta = f"{oct(st.st_mode)} {st.st_uid}:{st.st_gid}"
            if os.path.islink(p):
                out[rel] = f"link {meta} {os.readlink(p)}"
            elif p.is_dir():
                out[rel] = f"dir {meta}"
            elif p.is_file():
                out[rel] = f"file {meta} {hashlib.sha256(p.read_bytes()).hexdigest()}"
            else:
                out[rel] = f"special {meta} {st.st_rdev}"
    return out


# ---- the installer run the way a technician runs it, and what it must leave ----

INSTALL_ARGS = ["--name", "某某村文化服务点", "--township", "某某镇",
                "--hub", "http://127.0.0.1:9", "--code", "K7QM-2XPD-9RTA"]  # port 9: nothing listens
NODE_UNITS = ["edgenode-web.service", "edgenode-scheduler.service", "edgenode-advertise.service"]
# Boot-time recovery of an interrupted update and the path unit that starts the updater (both enabled),
# and the updater's own unit (static).
UPDATE_UNITS = ["edgenode-update-recover.service", "edgenode-update.path", "edgenode-update.service"]


def prepare(root: Root, wheel: Path, wheels: Path) -> list[str]:
    """Make the checkout, the wheel and the wheelhouse visible in the root; returns the installer's options."""
    root.bind(wheel.parent / "checkout", "/srv/edgenode-src")
    root.bind(wheels, "/srv/wheelhouse")
    root.bind(wheel.parent, "/srv/dist")
    return ["--wheel", f"/srv/dist/{wheel.name}", "--wheelhouse", "/srv/wheelhouse"]


INSTALLER = "/srv/edgenode-src/provisioning/install.sh"


def printed_password(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if line.strip().startswith("Password:"):
            return line.split(":", 1)[1].strip()
    return None


def read_db(root: Root, tmp: Path, rel: str = "var/lib/edgenode/edgenode.db"):
    """A private copy of a database in the root, so looking never changes the tree."""
    import sqlite3
    tmp.mkdir(parents=True, exist_ok=True)
    copy = tmp / Path(rel).name
    for suffix in ("", "-wal", "-shm"):
        src = root.path / (rel + suffix)
        if src.exists():
            shutil.copy2(src, str(copy) + suffix)
    conn = sqlite3.connect(copy)
    conn.row_factory = sqlite3.Row
    return conn


def passwd_entry(root: Root, name: str) -> list[str] | None:
    for line in (root.path / "etc/passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    return None


def group_members(root: Root, name: str) -> list[str]:
    for line in (root.path / "etc/group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return [m for m in parts[3].split(",") if m]
    return []


def check_installed(root: Root, tmp: Path, *, image: bool = False) -> dict:
    """Assert what a finished install leaves; returns facts the caller may compare."""
    from edgenode.core.config import load_config

    r = root.path
    user = passwd_entry(root, "edgenode")
    assert user is not None, "no edgenode user"
    uid, gid = int(user[2]), int(user[3])
    assert uid < 1000 and user[5] == "/var/lib/edgenode" and user[6] == "/usr/sbin/nologin"
    assert "www-data" in group_members(root, "edgenode"), "nginx cannot read the store"

    def owner_mode(rel):
        st = os.lstat(r / rel)
        return st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)

    assert owner_mode("etc/edgenode") == (0, gid, "0o750")
    assert owner_mode("etc/edgenode/edgenode.toml") == (0, gid, "0o640")
    assert owner_mode("var/lib/edgenode") == (uid, gid, "0o750")
    cfg = load_config(r / "etc/edgenode/edgenode.toml", env={})  # the services' loader: refuses unknown keys
    assert cfg["data_dir"] == "/var/lib/edgenode" and cfg["web.accel_redirect"] is True
    if not image:
        assert cfg["node.name"] == "某某村文化服务点" and cfg["node.township"] == "某某镇"

    # The program: /opt/edgenode links to a complete venv release that runs in the root.
    link = os.readlink(r / "opt/edgenode")
    assert link.startswith("/opt/edgenode-releases/") and (r / link.lstrip("/") / ".complete").exists()
    for exe in ("bin/edgenode", "bin/gunicorn", "bin/python"):
        assert os.access(r / link.lstrip("/") / exe, os.X_OK), exe
    assert root.run("/opt/edgenode/bin/edgenode", "--version").stdout.startswith("edgenode")
    assert root.run("/opt/edgenode/bin/python", "-c", "import edgenode.node.app, gunicorn").returncode == 0

    # Units: the repo's files, enabled for multi-user.target, accepted by systemd-analyze verify
    # against the real binaries in the root.
    wants = r / "etc/systemd/system/multi-user.target.wants"
    for unit in NODE_UNITS + ["edgenode-firstboot.service"] + UPDATE_UNITS:
        assert (r / "etc/systemd/system" / unit).read_bytes() == (r / "srv/edgenode-src/systemd" / unit).read_bytes()
    for unit in NODE_UNITS + UPDATE_UNITS[:2]:
        assert (wants / unit).is_symlink(), f"{unit} not enabled"
    assert (wants / "edgenode-firstboot.service").is_symlink() == image
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={r}",
                             *[f"/etc/systemd/system/{u}" for u in NODE_UNITS + UPDATE_UNITS]],
                            capture_output=True, text=True)
    problems = [ln for ln in (verify.stdout + verify.stderr).splitlines()
                if "sysinit.target" not in ln and ln.strip()]
    assert not problems, problems
    if (r / "srv/edgenode-src/systemd/nginx-site.conf").exists():
        assert (r / "etc/nginx/sites-enabled/edgenode").is_symlink()
        assert not (r / "etc/nginx/sites-enabled/default").exists()

    facts = {"uid": uid, "gid": gid, "release": link}
    ident = r / "var/lib/edgenode/identity"
    if image:
        assert not (ident / "node_id").exists(), "an image must not carry an identity"
        assert (r / "var/lib/edgenode/.firstboot").exists()
        return facts
    assert owner_mode("var/lib/edgenode/identity/node.key") == (uid, gid, "0o600")
    facts["node_id"] = (ident / "node_id").read_text().strip()
    assert len(facts["node_id"]) == 32 and int(facts["node_id"], 16) >= 0
    pending = r / "var/lib/edgenode/enroll-pending.json"
    assert owner_mode("var/lib/edgenode/enroll-pending.json") == (uid, gid, "0o600")
    assert json.loads(pending.read_text())["hub"] == "http://127.0.0.1:9"
    conn = read_db(root, tmp)
    facts["admin_hash"] = conn.execute("SELECT password_hash FROM admin_accounts WHERE username='admin'").fetchone()[0]
    conn.close()
    return facts


def admin_password_works(root: Root, tmp: Path, password: str) -> bool:
    from edgenode.node.web import accounts
    conn = read_db(root, tmp)
    try:
        accounts.login(conn, "admin", password, max_failures=5, lockout_seconds=900)
        return True
    except accounts.LoginFailed:
        return False
    finally:
        conn.close()


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL the whole process group the moment ``ready()`` is true (a power cut, for the installer)."""
    import signal
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"finished before the kill point:\n{proc.stdout.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("kill point never reached")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def add_migration(sql_steps: list[tuple[int, str, str]]):
    """A patch for build_edgenode_wheel: a next release whose usage area has more migrations."""
    def patch(src: Path) -> None:
        schema = src / "edgenode" / "node" / "usage" / "schema.py"
        schema.write_text(schema.read_text() + f"\nMIGRATIONS += {sql_steps!r}\n")
        init = src / "edgenode" / "__init__.py"
        init.write_text(init.read_text() + "\n# next release\n")
    return patch


# ---- which Debian 12 the root is made of ----

BASES = ["host", "debootstrap"]


def base_lower(kind: str) -> Path:
    """``host``: this machine's own root (fast).  ``debootstrap``: the cached minbase root (slow form)."""
    return Path("/") if kind == "host" else debootstrap_base()


def new_root(kind: str, work: Path, over: Path | None = None, **kw) -> Root:
    """A fresh root of the given kind, optionally with an installed tree ``over`` it."""
    lower = base_lower(kind)
    root = Root([over, lower] if over else lower, work, **kw)
    if kind == "debootstrap" and not over:
        # The installer's package step runs apt-get in there.
        shutil.copy2("/etc/resolv.conf", root.path / "etc" / "resolv.conf")
    return root


def base_param():
    """pytest params: the host form always, the debootstrap form with ``-m slow``."""
    import pytest
    return ["host", pytest.param("debootstrap", marks=pytest.mark.slow)]
