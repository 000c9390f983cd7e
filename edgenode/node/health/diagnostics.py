"""The diagnostics bundle: one redacted ``.tar.gz`` a volunteer can hand to the county.

Contents (``manifest.json`` lists them, with any part that could not be read)::

    snapshot.json        the health snapshot, warnings included
    config.json          the effective config, secrets masked
    logs/                journald (units edgenode*) or, without it, the log files
    history/imports.json the bundle import history
    history/jobs.json    recent jobs (pull, uplink, heartbeat, ...) from the volatile db
    migrations.json      applied schema migrations per area
    packages.txt         versions of the Debian and Python packages the node needs
    system.txt           kernel, OS release, addresses and routes

Secrets never leave the node: every configured secret (``cfg.secrets()``), the
generated session keys, and anything that looks like a bearer token or a
password assignment are replaced in *every* text part before it is archived.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
from importlib import metadata
from pathlib import Path

from edgenode.node.health import diagnostics_queries, snapshot_queries
from edgenode.node.sources import usb
from edgenode.core.config import MASK
from edgenode.core.errors import EdgenodeError

JOURNAL_LINES = 5000
LOG_TAIL_BYTES = 2 * 1024 * 1024
HISTORY_ROWS = 500
# Debian packages the node needs at run time (provisioning/node-packages.txt plus the tools health uses).
SYSTEM_PACKAGES = ("python3", "python3-venv", "nginx-light", "rsync", "ffmpeg", "sqlite3", "minisign",
                   "avahi-daemon", "avahi-utils", "iproute2", "dbus", "systemd", "ca-certificates", "openssh-server")
PYTHON_PACKAGES = ("edgenode", "flask", "flask-wtf", "flask-babel", "click", "sqlite-utils", "sh", "apscheduler",
                   "psutil", "zeroconf", "cryptography", "pypinyin", "gunicorn")
GENERATED_SECRETS = ("secret_key", "hub_secret_key")  # key files under the data dir
_PATTERNS = [
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:password|passwd|secret|token|api_key)\s*[=:]\s*)[^\s&\"',;]+"),
]


class DiagnosticsError(EdgenodeError):
    def __init__(self, message: str, zh: str):
        super().__init__("E_DIAGNOSE", message, zh=zh)


def secret_values(cfg) -> list[str]:
    """Every secret value that must not appear in the bundle, longest first."""
    values = set(cfg.secrets())
    for name in GENERATED_SECRETS:
        try:
            text = (cfg.data_path / name).read_text().strip()
        except OSError:
            continue
        if text:
            values.add(text)
    variants = set()
    for v in values:
        variants |= {v, json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1]}
    return sorted((v for v in variants if v), key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        text = text.replace(s, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _run(args: list[str], timeout: float = 20) -> tuple[int, str]:
    if not shutil.which(args[0]):
        return 127, f"{args[0]}: not installed\n"
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(args)}: timed out after {timeout:g} s\n"
    except OSError as e:
        return 126, f"{' '.join(args)}: {e}\n"
    return p.returncode, p.stdout + (p.stderr if p.returncode else "")


def _tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - limit))
        data = f.read()
    head = f"[... first {size - limit} bytes left out ...]\n" if size > limit else ""
    return head + data.decode("utf-8", errors="replace")


def log_files(cfg) -> list[Path]:
    found = []
    for entry in [str(cfg.data_path / "logs"), *cfg.health.log_files]:
        p = Path(entry)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(f for f in p.iterdir() if f.is_file() and not f.name.endswith((".gz", ".xz", ".zst")))
    return found


def collect_logs(cfg) -> dict[str, str]:
    """journald first; the log files when journald has nothing for us."""
    parts = {}
    rc, out = _run(["journalctl", "--no-pager", "-o", "short-iso", "-n", str(JOURNAL_LINES), "-u", "edgenode*"])
    if rc == 0 and out.strip() and "-- No entries --" not in out:
        parts["logs/journal.txt"] = out
    for i, path in enumerate(log_files(cfg)):
        try:
            parts[f"logs/{i:02d}-{path.name}"] = f"# {path}\n" + _tail(path)
        except OSError as e:
            parts[f"logs/{i:02d}-{path.name}.error"] = f"# {path}: {e}\n"
    if not parts:
        parts["logs/README.txt"] = (f"No logs found: journalctl said ({rc}): {out.strip()[:500]}\n"
                                    f"and no files under {cfg.data_path / 'logs'} or health.log_files.\n")
    return parts


def import_history(conn) -> list[dict]:
    if not snapshot_queries.has_table(conn, "imports"):
        return []
    return diagnostics_queries.recent_imports(conn, HISTORY_ROWS)


def job_history(cfg) -> list[dict]:
    from edgenode.core import jobs
    from edgenode.core.db import open_volatile

    vconn = open_volatile(cfg)
    try:
        return jobs.recent(vconn, limit=HISTORY_ROWS)
    finally:
        vconn.close()


def package_versions() -> str:
    lines = ["# Debian packages (dpkg-query)"]
    rc, out = _run(["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Status}\n", *SYSTEM_PACKAGES])
    lines.append(out.rstrip())
    lines.append("\n# Python packages")
    for name in PYTHON_PACKAGES:
        try:
            lines.append(f"{name}\t{metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name}\tnot installed")
    lines.append(f"python\t{platform.python_version()}")
    return "\n".join(lines) + "\n"


def system_info() -> str:
    out = [f"# uname\n{' '.join(platform.uname())}\n"]
    try:
        out.append("# /etc/os-release\n" + Path("/etc/os-release").read_text())
    except OSError:
        pass
    for args in (["ip", "addr"], ["ip", "route"], ["df", "-h"], ["uptime"]):
        out.append(f"# {' '.join(args)}\n{_run(args, timeout=10)[1]}")
    return "\n".join(out)


def _json(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


def collect(cfg, conn) -> tuple[dict[str, str], dict[str, str]]:
    """Every part as text, and the parts that failed (name -> reason)."""
    from edgenode.core.db import migrations_state
    from edgenode.node.health.snapshot import snapshot

    parts: dict[str, str] = {}
    failed: dict[str, str] = {}

    def part(name, fn):
        try:
            result = fn()
        except Exception as e:  # one unreadable part must not cost the whole bundle
            failed[name] = f"{type(e).__name__}: {e}"
            return
        if isinstance(result, dict) and name == "logs":
            parts.update(result)
        else:
            parts[name] = result if isinstance(result, str) else _json(result)

    part("snapshot.json", lambda: snapshot(cfg, conn, fresh=True))
    part("config.json", lambda: {"source": cfg.source, "config": cfg.as_dict(masked=True)})
    part("logs", lambda: collect_logs(cfg))
    part("history/imports.json", lambda: import_history(conn))
    part("history/jobs.json", lambda: job_history(cfg))
    part("migrations.json", lambda: migrations_state(conn))
    part("packages.txt", package_versions)
    part("system.txt", system_info)
    return parts, failed


def build(cfg, conn) -> bytes:
    """The bundle as gzip bytes, every text part redacted."""
    secrets = secret_values(cfg)
    parts, failed = collect(cfg, conn)
    now = time.time()
    manifest = {"format": 1, "created_at": now, "node_name": cfg.node.name, "files": sorted(parts),
                "failed": failed, "redacted_values": len(secrets)}
    parts["manifest.json"] = _json(manifest)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(parts):
            data = redact(parts[name], secrets).encode("utf-8")
            info = tarfile.TarInfo(f"edgenode-diagnose/{name}")
            info.size, info.mtime, info.mode = len(data), int(now), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def default_name(cfg, now: float | None = None) -> str:
    from edgenode.node.health.snapshot import node_info
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"edgenode-diagnose-{node_info(cfg)['id'][:8]}-{stamp}.tar.gz"


def write(cfg, conn, out: Path | str) -> Path:
    """Write the bundle atomically (temp file, fsync, rename, fsync the directory)."""
    out = Path(out)
    if out.is_dir():
        out = out / default_name(cfg)
    if not out.parent.is_dir():
        raise DiagnosticsError(f"{out.parent}: no such directory", zh=f"目录不存在：{out.parent}")
    data = build(cfg, conn)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        dfd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DiagnosticsError(f"{out}: cannot write: {e.strerror}",
                               zh=f"写入失败（{e.strerror}）：U盘是否已满或只读？") from None
    return out


# --- USB sticks -----------------------------------------------------------------

def write_to_usb(cfg, conn, mount: str) -> Path:
    """Write the bundle to a stick the admin page offered; any other path is refused."""
    targets = {t["mount"]: t for t in usb.targets(cfg)}
    target = targets.get(mount)
    if target is None:
        raise DiagnosticsError(f"{mount!r} is not a mounted USB stick", zh="没有找到这个U盘，请重新插入后刷新页面。")
    if not target["writable"]:
        raise DiagnosticsError(f"{mount} is mounted read-only", zh="这个U盘是只读的，无法写入。")
    path = write(cfg, conn, Path(mount) / default_name(cfg))
    os.sync()  # the volunteer will pull the stick out right after the page says done
    return path
