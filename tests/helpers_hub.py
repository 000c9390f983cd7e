"""Shared helpers for the hub tests: simulated nodes that enrol, sign and upload per protocol v1."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgenode.core.identity import Identity
from edgenode.hub.signing import sign_headers
from edgenode.protocol.usage_batch import batch_name, seal_bytes, sign_batch

COLUMNS = ["sannong", "pushi", "xinchengshi", "shequ"]
KINDS = ["view", "play_start", "progress", "play_end", "search"]


def new_identity() -> Identity:
    return Identity(uuid.uuid4().hex, Ed25519PrivateKey.generate())


def make_events(n: int, *, first_seq: int = 1, start: float = 1764000000.0, seed: int = 0,
                terminals: int = 8) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        col = rnd.choice(COLUMNS)
        kind = rnd.choice(KINDS)
        out.append({"s": first_seq + i, "t": round(start + i * 37.0, 3), "k": kind,
                    "m": f"term{rnd.randrange(terminals)}", "r": f"res-{col}-{rnd.randrange(6)}", "c": col,
                    "d": 15.0 if kind == "progress" else 0.0, "x": None})
    return out


def seal(ident: Identity, batch_no: int, events: list[dict], *, kind: str = "events") -> tuple[bytes, str]:
    """The batch bytes and the .sig text, as the node's outbox makes them."""
    if kind == "events":
        data = seal_bytes(ident.node_id, batch_no, events, first_seq=events[0]["s"], last_seq=events[-1]["s"],
                          sealed_at=1764000000.0 + batch_no)
    else:
        data = seal_bytes(ident.node_id, batch_no, events, first_seq=1, last_seq=1,
                          count=sum(a["n"] for a in events), kind="daily", sealed_at=1764000000.0 + batch_no)
    return data, sign_batch(ident, batch_no, data)


def snapshot(ident: Identity, **over) -> dict:
    now = time.time()
    snap = {"node_id": ident.node_id, "version": "0.1.0", "at": now, "boot_id": "b", "uptime": 3600,
            "disk": {"total": 100, "used": 40, "free": 60, "percent": 40.0}, "cpu_percent": 10.0, "mem_percent": 30.0,
            "catalog": {"resources": 100, "channels": {}}, "outbox": {"batches": 0, "bytes": 0},
            "last_pull": now - 600, "last_uplink": now - 60,
            "clock": {"ntp_synced": True, "wall": now, "monotonic": 100.0, "boot_count": 3}}
    for k, v in over.items():
        snap[k] = v
    return snap


class FlaskNode:
    """A simulated node talking to a hub through a Flask test client."""

    def __init__(self, client, ident: Identity | None = None):
        self.client = client
        self.ident = ident or new_identity()

    @property
    def node_id(self):
        return self.ident.node_id

    def enroll(self, code: str, name: str = "测试村服务点", township: str = "测试镇"):
        return self.client.post("/api/v1/enroll", json={"code": code, "node_id": self.node_id,
                                                        "public_key": self.ident.public_b64(), "name": name,
                                                        "township": township, "version": "0.1.0"})

    def signed(self, path: str, body: bytes, headers: dict | None = None, *, signer: Identity | None = None,
               content_type: str = "application/octet-stream"):
        h = sign_headers(signer or self.ident, "POST", path, body, int(time.time()))
        h["X-Edgenode-Node"] = self.node_id
        return self.client.post(path, data=body, headers={**h, **(headers or {})}, content_type=content_type)

    def heartbeat(self, **over):
        return self.signed("/api/v1/heartbeat", json.dumps(snapshot(self.ident, **over)).encode(),
                           content_type="application/json")

    def upload(self, batch_no: int, data: bytes, sig: str, **kw):
        return self.signed("/api/v1/batches", data, {"X-Edgenode-Batch-No": str(batch_no),
                                                     "X-Edgenode-Batch-Signature": sig}, **kw)


def write_usb_logs(root, ident: Identity, batches: dict[int, tuple[bytes, str]], snap: dict | None = None,
                   name: str = "USB村"):
    """The tree `edgenode export-logs` writes (docs/protocol.md)."""
    d = root / "edgenode-logs" / ident.node_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "node.json").write_text(json.dumps({"node_id": ident.node_id, "public_key": ident.public_b64(),
                                             "name": name}, ensure_ascii=False))
    for no, (data, sig) in batches.items():
        (d / batch_name(ident.node_id, no)).write_bytes(data)
        (d / (batch_name(ident.node_id, no) + ".sig")).write_text(sig)
    if snap is not None:
        body = json.dumps(snap).encode()
        (d / "heartbeat.json").write_bytes(body)
        (d / "heartbeat.json.sig").write_text(base64.b64encode(ident.sign(body)).decode())
    return d


def expected_totals(events_by_batch: list[list[dict]]) -> dict:
    evs = [e for b in events_by_batch for e in b]
    return {"visits": sum(e["k"] == "view" for e in evs), "plays": sum(e["k"] == "play_start" for e in evs),
            "events": len(evs), "watch_hours": round(sum(e["d"] for e in evs) / 3600, 2)}


def csrf_from(html: str) -> str:
    import re
    m = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, conn, username: str = "county", password: str = "correct horse 1"):
    """Create a staff account and log the Flask test client in through the real form."""
    from edgenode.hub import staff
    staff.set_password(conn, username, password)
    token = csrf_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def seed_fleet(conn, *, now: float | None = None) -> dict:
    """Enrolled nodes with heartbeats: one healthy, one offline, one low on disk, one behind on content."""
    from edgenode.core.db import transaction
    from edgenode.hub import heartbeat, registry
    now = time.time() if now is None else now
    with transaction(conn):
        conn.execute("INSERT OR REPLACE INTO hub_channels (channel, latest_seq, bundle_dir, published_at) "
                     "VALUES ('county', 12, 'county-000012', ?)", (now,))
    spec = {"healthy": ("东村服务点", "河口镇", {}, 0),
            "offline": ("西村服务点", "河口镇", {}, 5 * 86400),
            "disk": ("南村服务点", "山前镇", {"disk": {"total": 100, "used": 97, "free": 3, "percent": 97.0}}, 0),
            "behind": ("北村服务点", "山前镇", {"catalog": {"resources": 80, "channels": {"county": 7}}}, 0)}
    out = {}
    for role, (name, township, over, age) in spec.items():
        ident = new_identity()
        registry.enroll(conn, code=registry.new_code(conn, township=township), node_id=ident.node_id,
                        public_key=ident.public_b64(), name=name)
        snap = snapshot(ident, **{"catalog": {"resources": 100, "channels": {"county": 12}}, **over})
        snap["clock"]["wall"] = snap["at"] = now - age
        heartbeat.record(conn, registry.get_node(conn, ident.node_id), json.dumps(snap).encode(),
                         signed_ts=int(now - age), received_at=now - age)
        out[role] = ident
    return out


class LoopbackHub:
    """A hub app served by a real HTTP server on a free loopback port (a thread of this process)."""

    def __init__(self, cfg):
        import threading
        from werkzeug.serving import make_server
        from edgenode.hub.app import create_hub_app
        self.cfg = cfg
        self.app = create_hub_app(cfg)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.thread.join(5)
