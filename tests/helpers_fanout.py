"""Real parts for the fan-out tests: a county (real hub + its rsync daemon), township mirrors with
their own rsync daemon and nginx, villages that enrol, heartbeat and pull."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from edgenode.core.db import open_main
from tests.helpers_sync import Hub, Rsyncd, enrolled_node, free_port, wait_port

CHANNEL = "sannong"


def make_source(root: Path, seq: int, n: int, size: int, seed: int = 0) -> Path:
    """A folder for ``edgenode hub publish``: ``n`` incompressible PDFs and resources.json."""
    src = root / f"src-{seq}"
    src.mkdir(parents=True)
    rnd = random.Random(seed * 1000 + seq)
    res = []
    for i in range(n):
        (src / f"d{i}.pdf").write_bytes(b"%PDF-1.4\n" + rnd.randbytes(size - 16) + b"\n%%EOF\n")
        res.append({"id": f"s{seq}-d{i}", "path": f"d{i}.pdf", "title": f"农技资料 {seq}-{i}", "column": "sannong"})
    (src / "resources.json").write_text(json.dumps(res, ensure_ascii=False), encoding="utf-8")
    return src


class County:
    """The county hub (gunicorn, real endpoints) and its rsync daemon over the published tree."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.hub = Hub(tmp / "county")
        self.rsyncd: Rsyncd | None = None

    def start(self) -> "County":
        from edgenode.hub.keychain import county_key
        county_key(self.hub.cfg)  # made before any node enrols, so enrolment hands out its trust
        (self.hub.data_dir / "rsync").mkdir(parents=True, exist_ok=True)
        self.hub.start()
        self.rsyncd = Rsyncd(self.hub.data_dir / "rsync", self.tmp / "county-rsyncd").start()
        return self

    def publish(self, seq: int, *, n: int = 3, size: int = 400_000) -> dict:
        from edgenode.hub import publish
        conn = self.hub.db()
        try:
            return publish.publish(conn, self.hub.cfg, make_source(self.tmp / "src", seq, n, size), CHANNEL)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.rsyncd:
            self.rsyncd.stop()
        self.hub.stop()


class MirrorNode:
    """An enrolled node with the mirror role: its rsync daemon (and nginx on demand) on loopback."""

    def __init__(self, tmp: Path, county: County, name: str, township: str, **overrides):
        self.port, self.http_port = free_port(), free_port()
        self.cfg = enrolled_node(tmp, county.hub, name, node__township=township, node__name=name,
                                 sync__rsync_url=county.rsyncd.url, sync__channels=[CHANNEL], mirror__enabled=True,
                                 mirror__rsync_port=self.port, mirror__http_port=self.http_port,
                                 mirror__rsync_url=f"rsync://127.0.0.1:{self.port}",
                                 mirror__http_url=f"http://127.0.0.1:{self.http_port}/edgenode", **overrides)
        self.county = county
        self.rsyncd: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None

    @property
    def node_id(self) -> str:
        return node_id(self.cfg)

    def start_rsyncd(self) -> "MirrorNode":
        from edgenode.node.sources import mirror
        conf = mirror.mirror_dir(self.cfg) / "rsyncd.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(mirror.rsyncd_conf(self.cfg, address="127.0.0.1"))
        self.rsyncd = subprocess.Popen(mirror.rsyncd_command(self.cfg, conf, address="127.0.0.1"),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, proc=self.rsyncd)
        return self

    def start_nginx(self) -> "MirrorNode":
        from edgenode.node.sources import mirror
        from edgenode.node.stack import nginx_main_conf
        work = mirror.mirror_dir(self.cfg) / "nginx"
        work.mkdir(parents=True, exist_ok=True)
        site = work / "site.conf"
        site.write_text(mirror.nginx_server(self.cfg, listen=f"127.0.0.1:{self.http_port}"))
        conf = work / "nginx.conf"
        conf.write_text(nginx_main_conf(work, site, user="root root", access_log=True))
        self.nginx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.http_port, proc=self.nginx)
        return self

    def kill_rsyncd(self) -> None:
        """SIGKILL the daemon and the children serving connections (its process group)."""
        if self.rsyncd and self.rsyncd.poll() is None:
            os.killpg(self.rsyncd.pid, signal.SIGKILL)
            self.rsyncd.wait(5)

    def stop(self) -> None:
        self.kill_rsyncd()
        if self.nginx and self.nginx.poll() is None:
            os.killpg(self.nginx.pid, signal.SIGKILL)
            self.nginx.wait(5)


def village(tmp: Path, county: County, name: str, township: str, **overrides):
    return enrolled_node(tmp, county.hub, name, node__township=township, node__name=name,
                         sync__rsync_url=county.rsyncd.url, sync__channels=[CHANNEL], **overrides)


def node_id(cfg) -> str:
    from edgenode.core.identity import load_or_create
    return load_or_create(cfg).node_id


def heartbeat(cfg, county: County) -> dict:
    from edgenode.node.sync import heartbeat as hb
    conn = open_main(cfg)
    try:
        return hb.send(cfg, conn, county.hub.url)
    finally:
        conn.close()


def pull(cfg, **kw) -> dict:
    from edgenode.node.sync.runner import run_job
    return run_job(cfg, "pull", ignore_windows=True, retries=kw.pop("retries", 0), retry_delay=0.2, **kw)


def traffic(cfg) -> dict:
    """{source: rx bytes} over every month and channel."""
    from edgenode.node.sources import fanout
    conn = open_main(cfg)
    try:
        out: dict = {}
        for r in fanout.traffic(conn):
            out[r["source"]] = out.get(r["source"], 0) + r["rx"]
        return out
    finally:
        conn.close()


def imported_seqs(cfg) -> list[tuple]:
    """(channel, seq, result) of every import the node recorded, oldest first."""
    conn = open_main(cfg)
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT channel, seq, result FROM imports WHERE result = 'imported' ORDER BY id")]
    finally:
        conn.close()


def visible(cfg) -> int:
    conn = open_main(cfg)
    try:
        return conn.execute("SELECT count(*) FROM resources WHERE visible = 1").fetchone()[0]
    finally:
        conn.close()


def wait_for(pred, timeout: float = 20.0, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError("condition not met")
