"""Real parts for the sync tests: the hub on loopback (a subprocess, so it can be SIGKILLed),
an rsync daemon with its own rsyncd.conf, a TCP proxy that cuts connections, events."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent



def _env() -> dict:
    env = {**os.environ, "EDGENODE_CONFIG": ""}
    for k in ("EDGENODE_CRASH_AT", "EDGENODE_DATA_DIR"):
        env.pop(k, None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Hub:
    """The real county hub as production runs it: ``edgenode hub serve`` (gunicorn, 2 workers) in its
    own process group, so ``kill()`` SIGKILLs master and workers at once, mid-ingest if it is busy."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.cfg = make_config(self.data_dir)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(self.data_dir), "hub", *args],
                             cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(f"edgenode hub {' '.join(args)}: {out.stderr or out.stdout}")
        return out.stdout

    def start(self) -> "Hub":
        self.proc = subprocess.Popen([sys.executable, "-m", "edgenode", "--data-dir", str(self.data_dir), "hub",
                                      "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"],
                                     cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port, timeout=60, proc=self.proc)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        self.kill()  # the tests need no graceful hub shutdown: SQLite's WAL makes a kill safe

    def new_code(self) -> str:
        import json
        return json.loads(self.cli("enroll-code", "--json"))["code"]

    def db(self):
        from edgenode.hub.database import open_hub
        return open_hub(self.cfg)

    def totals(self, node_id: str) -> dict:
        conn = self.db()
        try:
            node = conn.execute("SELECT events, batches, contiguous, max_batch_no FROM hub_nodes WHERE node_id = ?",
                                (node_id,)).fetchone()
            daily = conn.execute("SELECT coalesce(sum(n), 0), coalesce(sum(seconds), 0) FROM hub_daily "
                                 "WHERE node_id = ?", (node_id,)).fetchone()
            batch_events = conn.execute("SELECT coalesce(sum(count), 0) FROM hub_batches WHERE node_id = ?",
                                        (node_id,)).fetchone()[0]
        finally:
            conn.close()
        return {"events": node["events"] if node else 0, "batches": node["batches"] if node else 0,
                "contiguous": node["contiguous"] if node else 0, "daily_n": daily[0],
                "daily_seconds": round(daily[1], 3), "batch_events": batch_events}

    def log(self, node_id: str | None = None) -> list[dict]:
        from edgenode.hub.registry import recent_log
        conn = self.db()
        try:
            return recent_log(conn, node_id, limit=500)
        finally:
            conn.close()


def enrolled_node(tmp: Path, hub: Hub, name: str = "node", **overrides):
    """A node config enrolled with ``hub`` through the real endpoint."""
    from edgenode.core.db import open_main
    from edgenode.node.sync.enroll import enroll
    cfg = make_config(tmp / name, **overrides)
    conn = open_main(cfg)
    try:
        enroll(cfg, conn, hub.url, hub.new_code())
    finally:
        conn.close()
    return cfg


TERMINALS = [f"{random.Random(i).getrandbits(64):016x}" for i in range(40)]


def add_events(conn, n: int, seed: int = 0, start_at: float = 1764000000.0) -> float:
    """Record ``n`` realistic events (as the portal does); returns their total seconds."""
    from edgenode.node.usage.events import record
    rnd = random.Random(seed)
    events, total = [], 0.0
    for i in range(n):
        kind = rnd.choice(["view", "play_start", "progress", "progress", "progress", "play_end", "search"])
        secs = 15.0 if kind == "progress" else 0.0
        total += secs
        ev = {"at": start_at + i * 0.7, "terminal": rnd.choice(TERMINALS), "kind": kind, "seconds": secs}
        if kind == "search":
            ev["data"] = {"q": "水稻"}
        else:
            ev["resource_id"], ev["column_key"] = f"demo.res-{rnd.randrange(60)}", rnd.choice(["sannong", "pushi"])
        events.append(ev)
    for i in range(0, n, 5000):
        record(conn, events[i:i + 5000])
    return total


# -- rsync daemon -----------------------------------------------------------------------------------

class Rsyncd:
    """``rsync --daemon --no-detach`` on a free loopback port serving ``root`` as module ``edgenode``."""

    def __init__(self, root: Path, workdir: Path):
        self.root, self.workdir, self.port = Path(root), Path(workdir), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rsync://127.0.0.1:{self.port}/edgenode"

    def start(self) -> "Rsyncd":
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "rsyncd.conf"
        conf.write_text(f"""pid file = {self.workdir}/rsyncd.pid
use chroot = no
read only = yes
log file = {self.workdir}/rsyncd.log
[edgenode]
    path = {self.root}
    uid = root
    gid = root
""")
        self.proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={self.port}",
                                      "--address=127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


class CuttingProxy:
    """A TCP proxy that forwards to ``target_port`` and cuts the first ``cuts`` connections after a
    random number of downstream bytes; counts every byte it forwards to the client."""

    def __init__(self, target_port: int, cuts: int, max_bytes: int, seed: int = 0):
        self.target_port, self.cuts_left, self.max_bytes = target_port, cuts, max_bytes
        self.rnd = random.Random(seed)
        self.bytes_down = 0
        self.cuts_done = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(8)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:  # a cut is spent only when it happens (a short connection may end first)
                limit = self.rnd.randrange(1, self.max_bytes) if self.cuts_left > 0 else None
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True, limit), daemon=True).start()

    def _pipe(self, src, dst, down: bool, limit):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                cut = limit is not None and sent + len(data) >= limit
                if cut:
                    data = data[:max(0, limit - sent)]
                dst.sendall(data)
                sent += len(data)
                if down:
                    with self.lock:
                        self.bytes_down += len(data)
                if cut:
                    with self.lock:
                        self.cuts_done += 1
                        self.cuts_left -= 1
                    return
        except OSError:
            pass
        finally:
            for sock in (src, dst):  # shutdown() also wakes the other direction's blocked recv()
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    sock.close()
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


def publish_bundle(tmp: Path, channel_root: Path, sk, channel: str, seq: int, n: int, size: int, seed: int) -> Path:
    """A signed bundle of ``n`` incompressible PDFs (rsync's delta finds nothing to reuse inside them),
    moved into the hub's rsync tree ``channel_root``."""
    import json
    from edgenode.protocol.build import build_bundle
    src = tmp / f"src-{channel}-{seq}"
    src.mkdir(parents=True)
    rnd = random.Random(seed)
    resources = []
    for i in range(n):
        (src / f"doc{i:03d}.pdf").write_bytes(b"%PDF-1.4\n" + rnd.randbytes(size - 16) + b"\n%%EOF\n")
        resources.append({"id": f"s{seq}-doc{i:03d}", "path": f"doc{i:03d}.pdf", "title": f"农技资料 {seq}-{i}",
                          "column": "sannong", "tags": ["水稻"], "description": "测试"})
    (src / "resources.json").write_text(json.dumps(resources, ensure_ascii=False), encoding="utf-8")
    b = build_bundle(src, channel, seq, tmp / f"out-{channel}-{seq}", secret_key=sk, link=False)
    channel_root.mkdir(parents=True, exist_ok=True)
    dest = channel_root / b.name
    b.rename(dest)
    return dest
