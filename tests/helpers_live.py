"""Live broadcast test parts: a real ffmpeg origin behind real nginx, a TCP link that can be cut,
a node with the live schedule, and hashing of the origin's recording."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.helpers_sync import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent


def make_source(path: Path, seconds: int, *, size: str = "480x270") -> Path:
    """A real H.264/AAC file: a moving test picture and a tone (made faster than real time)."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=duration={seconds}:size={size}:rate=25", "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True, timeout=120)
    return path


class Origin:
    """``edgenode hub live run`` (ffmpeg at real-time pace) writing into the hub's data dir, served by
    nginx (the hub's own server block, hub/live.py)."""

    def __init__(self, tmp: Path):
        self.data_dir = tmp / "hub"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        from edgenode.hub.live import nginx_conf
        work = tmp / "hub-nginx"
        conf = work / "nginx.conf"
        work.mkdir(parents=True, exist_ok=True)
        conf.write_text(nginx_conf(self.data_dir / "live", listen=f"127.0.0.1:{self.port}", workdir=work,
                                  user="root root" if os.geteuid() == 0 else None))
        check = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.nginx = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.nginx)
        self.ffmpeg = None
        self.access_log = work / "logs" / "access.log"

    def run(self, key: str, source: Path, *extra: str) -> subprocess.Popen:
        self.key = key
        self.ffmpeg = subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(self.data_dir), "hub",
                                        "live", "run", key, "--input", str(source), "--json", *extra],
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
        return self.ffmpeg

    def dir(self, key: str | None = None) -> Path:
        return self.data_dir / "live" / (key or self.key)

    def wait_segments(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(list(self.dir().glob("seg*.ts"))) >= n and (self.dir() / "index.m3u8").exists():
                return
            time.sleep(0.2)
        raise TimeoutError(f"origin made fewer than {n} segments")

    def recording_hashes(self) -> list[str]:
        """The sha256 of every segment of the origin's recording, in order."""
        from edgenode.protocol.live import parse_playlist
        pl = parse_playlist((self.dir() / "recording.m3u8").read_text(), "http://x/")
        return [hashlib.sha256((self.dir() / s.uri.rsplit("/", 1)[-1]).read_bytes()).hexdigest()
                for s in pl.segments]

    def recording_seconds(self) -> float:
        from edgenode.protocol.live import parse_playlist
        pl = parse_playlist((self.dir() / "recording.m3u8").read_text(), "http://x/")
        return sum(s.duration for s in pl.segments)

    def stop(self) -> None:
        for p in (self.ffmpeg, self.nginx):
            if p is not None and p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL) if p is self.ffmpeg else p.terminate()
                except ProcessLookupError:
                    pass
                p.wait(10)


class Link:
    """A TCP proxy between node and origin that counts the bytes it brings down and can be cut
    (``down()``: every connection reset and new ones refused) and restored (``up()``)."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.bytes_down = 0
        self.lock = threading.Lock()
        self.is_up = True
        self.conns: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if not self.is_up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, down: bool):
        try:
            while True:
                data = src.recv(65536)
                if not data or not self.is_up:
                    break
                dst.sendall(data)
                if down:
                    with self.lock:
                        self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def down(self) -> None:
        self.is_up = False
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self) -> None:
        self.is_up = True

    def close(self) -> None:
        self.closed = True
        self.down()
        self.sock.close()


def start_production(workdir: Path, data_dir: Path):
    """``helpers_portal.Production`` with its scheduler; if it fails to come up on a busy machine, what it
    started is stopped here instead of being left behind."""
    import psutil
    from tests.helpers_portal import Production

    before = {p.pid for p in psutil.Process().children()}
    try:
        return Production(workdir, data_dir, scheduler=True)
    except Exception:
        for p in psutil.Process().children():
            if p.pid not in before:
                for q in (*p.children(recursive=True), p):
                    try:
                        q.kill()
                    except psutil.NoSuchProcess:
                        pass
        raise


def live_node(work: Path, origin, link, *, bid: str, seconds: int):
    """A node in production (portal + scheduler) trusting ``origin``'s county, with the broadcast ``bid``
    reached through ``link`` scheduled from now for ``seconds`` + 15 s: scheduled once the node runs, so a
    slow start does not eat into the window.  The live settings come from the caller's environment.
    Returns (cfg, data dir, production, broadcast key); if the node does not come up, link and origin are
    closed here."""
    import time

    from edgenode.core.config import load_config
    from edgenode.core.db import open_main

    data = work / "node"
    cfg = load_config(overrides={"data_dir": str(data)})
    open_main(cfg).close()
    trust_county(cfg, origin.data_dir)
    try:
        prod = start_production(work / "prod", data)
    except Exception:
        link.close()
        origin.stop()
        raise
    now = time.time()
    key = schedule_broadcast(cfg, origin.data_dir, bid=bid, start=now, end=now + seconds + 15,
                             stream_url=f"{link.url}/live/{bid}/index.m3u8")
    return cfg, data, prod, key


def trust_county(node_cfg, hub_data: Path, channels=("shequ",)) -> None:
    """The node trusts the county key for ``channels`` (what enrolment does, without a hub web server)."""
    from edgenode.core.config import load_config
    from edgenode.core.db import open_main
    from edgenode.hub import keychain
    from edgenode.node.imports import trust

    hub_cfg = load_config(overrides={"data_dir": str(hub_data)}, env={})
    conn = open_main(node_cfg)
    try:
        trust.add_key(conn, keychain.county_key(hub_cfg).public, list(channels), comment="county")
    finally:
        conn.close()


def schedule_broadcast(node_cfg, hub_data: Path, *, bid: str, stream_url: str, start: float, end: float,
                       channel: str = "shequ", title: str = "图书馆公开课直播") -> str:
    """The county signs a schedule (``edgenode hub live schedule``) and the node applies it."""
    from edgenode.core.config import load_config
    from edgenode.core.db import open_main
    from edgenode.hub import live as hub_live
    from edgenode.node.live import schedule

    hub_cfg = load_config(overrides={"data_dir": str(hub_data)}, env={})
    hub_live.add(hub_cfg, channel, {"id": bid, "title": title, "description": "县图书馆", "start": start,
                                    "end": end, "stream_url": stream_url})
    conn = open_main(node_cfg)
    try:
        for item in hub_live.answers(hub_cfg):
            schedule.apply_document(node_cfg, conn, item["schedule"].encode(), item["signature"])
    finally:
        conn.close()
    return f"{channel}.{bid}"
