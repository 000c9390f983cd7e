"""A stand-in for systemd on a test node: boot-time recovery, then nginx, the portal and the scheduler.

    python tests/node_supervisor.py run CONFIG SOCKET PORT   # "boot" the node; runs until killed
    python tests/node_supervisor.py ctl SOCKET stop|start    # what updates.stop_command/start_command call

At "boot" it runs ``<current>/bin/edgenode update recover`` (as edgenode-update-recover.service
does before the portal), keeps nginx running throughout (as on a node, nginx is not part of an
update) and starts gunicorn and the scheduler from whatever ``current`` names at that moment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env(config: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGENODE_")}
    env.update(EDGENODE_CONFIG=str(config), PYTHONUNBUFFERED="1")
    return env


class Node:
    def __init__(self, config: Path, port: int):
        from edgenode.core.config import load_config
        from edgenode.node import stack
        self.config, self.cfg = config, load_config(config, env={})
        self.env = _env(config)
        self.current = Path(self.cfg["updates.current_link"])
        self.plan = stack.prepare(self.cfg, host="0.0.0.0", port=port, advertise=False)
        self.env.update({k: v for k, v in self.plan["env"].items() if k != "EDGENODE_CONFIG"})
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.log = open(self.cfg.data_path / "supervisor.log", "ab")

    def _spawn(self, name: str, argv: list[str]) -> None:
        # cwd: the data directory, as the units' WorkingDirectory (gunicorn puts its cwd first on sys.path)
        self.procs[name] = subprocess.Popen(argv, env=self.env, stdout=self.log, stderr=self.log,
                                            start_new_session=True, cwd=self.cfg.data_path)

    def start(self) -> None:
        with self.lock:
            cur = Path(os.path.realpath(self.current))
            if "web" not in self.procs:
                self._spawn("web", [str(cur / "bin" / "gunicorn"), "-c", str(REPO / "systemd" / "gunicorn.conf.py"),
                                    "edgenode.node.wsgi:app"])
            if "scheduler" not in self.procs:
                self._spawn("scheduler", [str(cur / "bin" / "edgenode"), "scheduler"])

    def stop(self) -> None:
        with self.lock:
            for name in ("web", "scheduler"):
                p = self.procs.pop(name, None)
                if p and p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        os.killpg(p.pid, signal.SIGKILL)
                        p.wait()

    def boot(self, sock_path: str) -> None:
        cur = Path(os.path.realpath(self.current))
        subprocess.run([str(cur / "bin" / "edgenode"), "update", "recover"], env=self.env, stdout=self.log,
                       stderr=self.log, timeout=300, cwd=self.cfg.data_path)
        self._spawn("nginx", self.plan["processes"]["nginx"].split())
        self.start()
        srv = socket.socket(socket.AF_UNIX)
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        srv.bind(sock_path)
        srv.listen(4)
        while True:
            c, _ = srv.accept()
            try:
                cmd = c.recv(64).decode().strip()
                try:
                    {"stop": self.stop, "start": self.start}[cmd]()
                    answer = b"ok"
                except Exception as e:  # the caller sees the failure, as with systemctl
                    answer = f"error {e}".encode()
                c.sendall(answer)
            except OSError:  # the caller was killed meanwhile (a SIGKILLed updater): systemd lives on too
                pass
            finally:
                c.close()


def ctl(sock_path: str, cmd: str) -> int:
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(60)
    c.connect(sock_path)
    c.sendall(cmd.encode())
    answer = c.recv(256).decode()
    return 0 if answer == "ok" else 1


if __name__ == "__main__":
    if sys.argv[1] == "ctl":
        sys.exit(ctl(sys.argv[2], sys.argv[3]))
    node = Node(Path(sys.argv[2]), int(sys.argv[4]))
    signal.signal(signal.SIGTERM, lambda *a: (node.stop(), os._exit(0)))
    node.boot(sys.argv[3])
