"""Helpers for the portal, admin and serving tests (issue 3)."""

from __future__ import annotations

import re

from edgenode.node.web import accounts

PASSWORD = "correct horse 1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/admin/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def set_admin(conn, password: str = PASSWORD) -> dict:
    return accounts.set_password(conn, password)


def login(client, password: str = PASSWORD, *, username: str = "admin", next: str | None = None):
    token = csrf_token(client)
    path = "/admin/login" + (f"?next={next}" if next else "")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})


# -- real servers: gunicorn + nginx (production) and `edgenode serve` (built-in) ----------

import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.helpers_sync import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SITE = REPO / "systemd" / "nginx-site.conf"
GUNICORN_CONF = REPO / "systemd" / "gunicorn.conf.py"
STATIC = REPO / "edgenode" / "node" / "web" / "static"


def write_config(path: Path, data_dir: Path, **web) -> Path:
    lines = [f'data_dir = "{data_dir}"', "[web]"] + [f"{k} = {str(v).lower() if isinstance(v, bool) else v}"
                                                    for k, v in web.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_http(url: str, timeout: float = 30, proc=None) -> None:
    import requests
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):  # a loaded machine: the first page is slow
            time.sleep(0.1)
    raise TimeoutError(url)


def nginx_config(workdir: Path, *, port: int, store: Path, upstream: str, static: Path = STATIC,
                 site: Path = SITE) -> Path:
    """The shipped site file with this run's paths, wrapped in a minimal nginx.conf (as `edgenode stack`)."""
    from edgenode.node.stack import nginx_main_conf, render_site

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "site.conf").write_text(render_site(site.read_text(), listen=f"127.0.0.1:{port}", store=store,
                                                   upstream=upstream, auth_cache=workdir / "auth-cache",
                                                   static=static))
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_main_conf(workdir, workdir / "site.conf", user="root" if os.geteuid() == 0 else None,
                                    access_log=False))
    return conf


def start_nginx(conf: Path, port: int) -> subprocess.Popen:
    check = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.PIPE)
    wait_http(f"http://127.0.0.1:{port}/static/portal.css", proc=proc)
    return proc


def start_gunicorn(config: Path, bind: str, *, workers: int | None = None, threads: int | None = None
                   ) -> subprocess.Popen:
    """gunicorn with the shipped settings (systemd/gunicorn.conf.py); ``workers``/``threads`` override them."""
    env = {**os.environ, "EDGENODE_CONFIG": str(config), "EDGENODE_GUNICORN_BIND": bind,
           "EDGENODE_GUNICORN_LOGLEVEL": "warning"}
    for name, value in (("WORKERS", workers), ("THREADS", threads)):
        if value is None:
            env.pop(f"EDGENODE_GUNICORN_{name}", None)
        else:
            env[f"EDGENODE_GUNICORN_{name}"] = str(value)
    env.pop("EDGENODE_DATA_DIR", None)
    return subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "edgenode.node.wsgi:app"],
                            env=env, cwd=REPO, start_new_session=True)


def start_builtin(config: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "EDGENODE_CONFIG": str(config)}
    env.pop("EDGENODE_DATA_DIR", None)
    proc = subprocess.Popen([str(VENV_BIN / "edgenode"), "serve", "--dev", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=REPO, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/static/portal.css", proc=proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Production:
    """gunicorn on a UNIX socket behind nginx on a free port, for one data directory; with
    ``scheduler=True`` also ``edgenode scheduler`` on the same config, as an appliance runs."""

    def __init__(self, workdir: Path, data_dir: Path, *, workers: int | None = None, threads: int | None = None,
                 scheduler: bool = False):
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.sock = workdir / "gunicorn.sock"
        config = write_config(workdir / "edgenode.toml", data_dir, accel_redirect=True)
        self.scheduler = None
        if scheduler:
            env = {**os.environ, "EDGENODE_CONFIG": str(config)}
            env.pop("EDGENODE_DATA_DIR", None)
            self.scheduler = subprocess.Popen([str(VENV_BIN / "edgenode"), "scheduler"], env=env, cwd=REPO,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.gunicorn = start_gunicorn(config, f"unix:{self.sock}", workers=workers, threads=threads)
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.gunicorn.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        conf = nginx_config(workdir, port=self.port, store=data_dir / "store", upstream=f"unix:{self.sock}")
        self.nginx = start_nginx(conf, self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/", proc=self.gunicorn)

    def stop(self) -> None:
        stop(self.nginx)
        stop(self.gunicorn)
        if self.scheduler is not None:
            stop(self.scheduler)


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def raw_unix_get(sock_path: Path, path: str, headers: dict | None = None) -> tuple[str, bytes]:
    """GET straight from gunicorn's socket, bypassing nginx: (head, body)."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body
