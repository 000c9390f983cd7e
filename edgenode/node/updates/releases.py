"""Release directories: one venv per version beside the running one, and the atomic switch between them.

``<releases_dir>/<version>-<sha12>/`` is a venv with the edgenode wheel; its locked dependencies
are installed once per lock into ``<releases_dir>/deps-<lock sha16>/`` (``pip --target``) and
named by a ``.pth`` file, so a release that keeps its lock (most do) builds in seconds and
costs no second copy.  A directory is used only once it holds ``.complete``, written after
everything in it is on disk; a half-built one from a power cut is built again.

``switch`` points ``current_link`` at a release by renaming a new symlink over it: a power
cut leaves the old target or the new one, never neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgenode.core.errors import EdgenodeError
from edgenode.core.store import fsync_dir

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"


def _run(argv: list[str], what: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise EdgenodeError("E_UPDATE_BUILD", f"{what} failed: {' | '.join(tail)}", zh="新版本安装失败")


def _pip(python: str, pip: str | None = None) -> list[str]:
    """pip for ``python``: its own, or run straight from the interpreter's bundled pip wheel."""
    return [python, f"{pip}/pip" if pip else "-m", *([] if pip else ["pip"]), "--disable-pip-version-check",
            "--no-input", "-q"]


def _bundled_pip(interpreter: str) -> str | None:
    """The pip wheel the interpreter's ensurepip carries (pyenv, python.org) or Debian's python3-pip-whl: a
    venv without pip then costs a second instead of several (a release installs with it, offline)."""
    res = subprocess.run([interpreter, "-c", "import ensurepip, os; print(os.path.dirname(ensurepip.__file__))"],
                         capture_output=True, text=True)
    dirs = [Path(res.stdout.strip()) / "_bundled"] if res.returncode == 0 else []
    for d in [*dirs, Path("/usr/share/python-wheels")]:
        found = sorted(d.glob("pip-*-py3-none-any.whl"))
        if found:
            return str(found[-1])
    return None


def deps_dir(cfg, release, release_dir: Path, python: str, pip: str | None = None) -> Path:
    """The shared dependency tree of this release's lock, installed from the release's own wheels."""
    d = Path(cfg["updates.releases_dir"]) / f"deps-{release.requirements['sha256'][:16]}"
    if (d / ".complete").exists():
        return d
    shutil.rmtree(d, ignore_errors=True)
    _run(_pip(python, pip) + ["install", "--no-compile", "--no-deps", "--no-index", "--require-hashes",
                                 "--find-links", str(release_dir / "deps"), "--target", str(d),
                                 "-r", str(release_dir / "requirements.lock")], "pip install of the dependencies")
    # The services cannot write byte code under /opt (ProtectSystem=strict): compile once, now.
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(d)], capture_output=True)
    os.sync()
    (d / ".complete").touch()
    return d


def build(cfg, release, release_dir: Path) -> Path:
    """The release's directory, built if needed while the running release keeps serving."""
    base = Path(cfg["updates.releases_dir"])
    base.mkdir(parents=True, exist_ok=True)
    target = base / f"{release.version}-{release.sha256[:12]}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    pip = _bundled_pip(cfg["updates.python"])
    _run([cfg["updates.python"], "-m", "venv", *(["--without-pip"] if pip else []), str(target)], "python3 -m venv")
    python = str(target / "bin" / "python")
    deps = deps_dir(cfg, release, release_dir, python, pip)
    site = target / "lib" / PY / "site-packages"
    (site / "edgenode-deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    _run(_pip(python, pip) + ["install", "--no-compile", "--no-deps", "--no-index",
                              str(release_dir / release.wheel["path"])], "pip install of edgenode")
    _console_script(target, "gunicorn", "gunicorn.app.wsgiapp", "run")
    subprocess.run([str(target / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(site)],
                   capture_output=True)
    os.sync()  # every file of the release on disk before anything may point at it
    (target / ".complete").touch()
    fsync_dir(target)
    return target


def _console_script(venv: Path, name: str, module: str, func: str) -> None:
    """What pip writes for a dependency's entry point (the deps tree's own scripts name another python)."""
    path = venv / "bin" / name
    path.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {func}\n"
                    f"sys.exit({func}())\n", encoding="utf-8")
    path.chmod(0o755)


def current(cfg) -> Path | None:
    link = Path(cfg["updates.current_link"])
    return Path(os.path.realpath(link)) if link.is_symlink() else None


def switch(cfg, target: Path) -> None:
    """Point the link at ``target`` atomically and durably."""
    link = Path(cfg["updates.current_link"])
    if link.exists() and not link.is_symlink():
        raise EdgenodeError("E_UPDATE_LINK", f"{link} is not a symlink to a release", zh="程序目录不是版本链接")
    tmp = link.with_name(link.name + ".new")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(str(target), tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def prune(cfg, keep: list[Path]) -> list[str]:
    """Remove release directories other than ``keep`` (the current and the previous one)."""
    base = Path(cfg["updates.releases_dir"])
    keep_real = {os.path.realpath(p) for p in keep if p}
    removed = []
    for d in base.iterdir() if base.exists() else []:
        if d.is_dir() and not d.name.startswith("deps-") and os.path.realpath(d) not in keep_real:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    wanted = {line.strip() for k in keep_real for line in _pth(Path(k))}
    for d in base.glob("deps-*"):
        if str(d) not in wanted:
            shutil.rmtree(d, ignore_errors=True)
    return removed


def _pth(release: Path) -> list[str]:
    try:
        return (release / "lib" / PY / "site-packages" / "edgenode-deps.pth").read_text().splitlines()
    except OSError:
        return []
