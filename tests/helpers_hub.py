"""Shared helpers for the hub tests: simulated nodes that enrol, sign and upload per protocol v1."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgenode.identity import Identity
from edgenode.hub.signing import sign_headers
from edgenode.usage.batch import batch_name, seal_bytes, sign_batch

COLUMNS = ["farming", "health", "opera", "kids", "policy"]
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
