"""The production stack in the foreground, for `make run` and for trying a node by hand.

The same parts as an installed node (docs/serving.md), in one terminal:
gunicorn with the shipped settings on a UNIX socket, nginx with the shipped site
file (media by sendfile after the auth subrequest), the scheduler (pulls, usage
upload, housekeeping) and the mDNS advertiser.  honcho, a well-kept Procfile
runner, is the one parent: it starts each in its own process group, prefixes
their output, and on Ctrl-C (or when any of them exits) stops every group,
killing what is still there after 5 s, so nothing is left behind.  Ports are
unprivileged, so nothing here needs root.

Everything generated lives in ``<data_dir>/stack/``: the nginx configuration,
the Procfile, nginx's temporary and log files, the gunicorn socket.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import sys
from pathlib import Path

import edgenode
from edgenode.core.errors import EdgenodeError

PACKAGE = Path(edgenode.__file__).resolve().parent
STATIC = PACKAGE / "node" / "web" / "static"
# Shipped beside the package: systemd/ in a checkout, share/systemd/ in an installed release.
SHIPPED_DIRS = (PACKAGE.parent / "systemd", Path(sys.prefix) / "share" / "systemd")
DEMO_PASSWORD_FILE = "demo-admin-password"

# What the shipped site file says, and what this run puts in its place (render_site).
SITE_LISTEN = ("listen 80 default_server;", "listen [::]:80 default_server;")
SITE_STORE = "/var/lib/edgenode/store"
SITE_LIVE = "/var/lib/edgenode/live"  # the live relay's folder (docs/live.md), beside the store
SITE_STATIC = "/opt/edgenode/lib/python3.11/site-packages/edgenode/node/web/static"
SITE_UPSTREAM = "unix:/run/edgenode-web/gunicorn.sock"
SITE_AUTH_CACHE = "/var/cache/nginx/edgenode-auth"


def shipped_file(name: str) -> Path:
    for d in SHIPPED_DIRS:
        if (d / name).is_file():
            return d / name
    raise EdgenodeError("E_STACK_FILES", f"cannot find the shipped {name} in " + " or ".join(map(str, SHIPPED_DIRS)))


def render_site(site_text: str, *, listen: str, store: Path, upstream: str, auth_cache: Path,
                static: Path = STATIC) -> str:
    """The shipped nginx site with this run's address and paths; every placeholder must still be there,
    so a change to the site file cannot silently leave a production path in a development stack."""
    replacements = [(SITE_LISTEN[0], f"listen {listen};"), (SITE_LISTEN[1], ""), (SITE_STORE, str(store)),
                    (SITE_LIVE, str(Path(store).parent / "live")),
                    (SITE_STATIC, str(static)), (SITE_UPSTREAM, upstream), (SITE_AUTH_CACHE, str(auth_cache))]
    for old, new in replacements:
        if old not in site_text:
            raise EdgenodeError("E_STACK_FILES", f"the nginx site file no longer contains {old!r}")
        site_text = site_text.replace(old, new)
    return site_text


def nginx_main_conf(workdir: Path, site: Path, *, user: str | None, access_log: bool) -> str:
    """A minimal nginx.conf around ``site``: foreground, every path under ``workdir``."""
    for d in ("client", "proxy", "logs"):
        (workdir / d).mkdir(parents=True, exist_ok=True)
    log = f"access_log {workdir}/logs/access.log;" if access_log else "access_log off;"
    return f"""daemon off;
{f"user {user};" if user else ""}
worker_processes 2;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    {log}
    client_body_temp_path {workdir}/client;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/client;
    uwsgi_temp_path {workdir}/client;
    scgi_temp_path {workdir}/client;
    include {site};
}}
"""


def _nginx_user(data_dir: Path) -> str | None:
    """As root, nginx's workers would drop to nobody, who cannot read a 0700 data tree: run them as its
    owner.  Otherwise nginx cannot change user and must not be asked to."""
    if os.geteuid() != 0:
        return None
    st = data_dir.stat()
    try:
        return f"{pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name}"
    except KeyError:
        return "root root"


def demo_password(conn, data_dir: Path) -> str | None:
    """The demo administrator's password: made on first run and kept (0600) in the data directory.
    None when someone has set their own (we never learn it)."""
    from edgenode.node.web import accounts

    path = Path(data_dir) / DEMO_PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if accounts.has_account(conn):
        return None
    password = "demo-" + secrets.token_urlsafe(9)
    accounts.set_password(conn, password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password


def _program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise EdgenodeError("E_STACK_PROGRAM", f"{name} is not installed (make sysdeps installs it)")
    return found


def prepare(cfg, *, host: str, port: int, advertise: bool = True) -> dict:
    """Write ``<data_dir>/stack/`` (nginx.conf, site.conf, Procfile) and return what to run."""
    data_dir = Path(cfg.data_dir).resolve()
    work = data_dir / "stack"
    work.mkdir(parents=True, exist_ok=True)
    sock = work / "web.sock"
    if len(str(sock)) > 100:
        raise EdgenodeError("E_STACK_PATH", f"{sock}: too long for a UNIX socket; use a shorter --data-dir")
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    site = work / "site.conf"
    site.write_text(render_site(shipped_file("nginx-site.conf").read_text(), listen=listen,
                                store=data_dir / "store", upstream=f"unix:{sock}", auth_cache=work / "auth-cache"))
    conf = work / "nginx.conf"
    conf.write_text(nginx_main_conf(work, site, user=_nginx_user(data_dir), access_log=True))
    bin_dir = Path(sys.executable).parent
    processes = {
        "web": f"{bin_dir / 'gunicorn'} -c {shipped_file('gunicorn.conf.py')} edgenode.node.wsgi:app",
        "nginx": f"{_program('nginx')} -c {conf}",
        "scheduler": f"{bin_dir / 'edgenode'} scheduler",
    }
    if cfg["mirror.enabled"]:
        processes["mirror-rsyncd"] = _mirror(cfg, site)
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if advertise and cfg.discovery.enabled and not loopback:
        processes["advertise"] = f"{bin_dir / 'edgenode'} advertise"
    procfile = work / "Procfile"
    procfile.write_text("".join(f"{name}: {cmd}\n" for name, cmd in processes.items()))
    env = {"EDGENODE_DATA_DIR": str(data_dir), "EDGENODE_GUNICORN_BIND": f"unix:{sock}",
           "EDGENODE_WEB_ACCEL_REDIRECT": "true", "EDGENODE_DISCOVERY_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    if Path(cfg.source).is_file():
        env["EDGENODE_CONFIG"] = str(Path(cfg.source).resolve())
    return {"work": work, "procfile": procfile, "processes": processes, "env": env, "nginx_conf": conf}


def _mirror(cfg, site: Path) -> str:
    """The mirror role (docs/fanout.md): its server block joins the site, its rsync daemon the processes."""
    from edgenode.node.sources import mirror
    d = mirror.mirror_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    with open(site, "a", encoding="utf-8") as f:
        f.write("\n" + mirror.nginx_server(cfg))
    conf = d / "rsyncd.conf"
    conf.write_text(mirror.rsyncd_conf(cfg))
    return " ".join(mirror.rsyncd_command(cfg, conf))


def urls(host: str, port: int) -> list[str]:
    """Where terminals reach the portal: this machine, and each LAN address when listening on all."""
    from edgenode.node.health.probes import lan_ipv4

    if host in ("0.0.0.0", "::"):
        return [f"http://127.0.0.1:{port}/"] + [f"http://{a}:{port}/" for a in lan_ipv4()]
    return [f"http://{'[' + host + ']' if ':' in host else host}:{port}/"]


def run(plan: dict) -> None:
    """Replace this process with honcho running the Procfile (never returns)."""
    honcho = Path(sys.executable).parent / "honcho"
    if not honcho.exists():
        raise EdgenodeError("E_STACK_PROGRAM", "honcho is not installed: pip install 'edgenode[demo]' (make run does)")
    os.environ.update(plan["env"])
    os.execv(str(honcho), [str(honcho), "start", "--no-colour", "-f", str(plan["procfile"]), "-d", str(plan["work"])])
