"""Forged input at the real hub: wrong key, replayed, tampered, re-numbered, unenrolled.  Each is refused
(or, for an exact replay, changes nothing) and leaves a line in the hub's log; the totals never move."""

from __future__ import annotations

import base64
import gzip

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgenode.core.db import open_main
from edgenode.core.identity import Identity, load_or_create
from edgenode.node.sync import client, outbox, uplink
from edgenode.protocol import usage_batch as B
from tests.conftest import make_config
from tests.helpers_sync import Hub, add_events, enrolled_node


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("forged")
    hub = Hub(tmp / "hub").start()
    cfg = enrolled_node(tmp, hub)
    conn = open_main(cfg)
    add_events(conn, 120)
    ident = load_or_create(cfg)
    uplink.seal(cfg, conn, ident)
    (batch_no, path), = outbox.batch_files(cfg)
    data, sig = path.read_bytes(), outbox.sig_path(path).read_text()
    assert uplink.send(cfg, conn, hub.url, ident)["sent"] == 1
    conn.close()
    yield {"hub": hub, "cfg": cfg, "ident": ident, "data": data, "sig": sig, "batch_no": batch_no, "tmp": tmp}
    hub.stop()


def _post(cfg, hub, ident, batch_no, data, sig, *, sign_as=None):
    """POST a batch as the protocol does, but with whatever parts the attacker chose."""
    headers = {"X-Edgenode-Batch-No": str(batch_no), "X-Edgenode-Batch-Signature": sig,
               "Content-Type": "application/octet-stream"}
    headers.update(client.signed_headers(sign_as or ident, "POST", "/api/v1/batches", data))
    return requests.post(hub.url + "/api/v1/batches", data=data, headers=headers, timeout=10)


def _wrong_key(ident) -> Identity:
    return Identity(ident.node_id, Ed25519PrivateKey.generate())  # claims the node's id, holds another key


def _tamper(data: bytes) -> bytes:
    text = gzip.decompress(data).decode().replace('"k":"progress"', '"k":"view"', 1)
    return gzip.compress(text.encode())


CASES = {
    # name: (how to build (batch_no, body, batch signature, request signer), expected status, expected code)
    "wrong key: batch and request signed by another key": (
        lambda w: (99, B.seal_bytes(w["ident"].node_id, 99, [], first_seq=1, last_seq=1, count=0),
                   B.sign_batch(_wrong_key(w["ident"]), 99, B.seal_bytes(
                       w["ident"].node_id, 99, [], first_seq=1, last_seq=1, count=0)), _wrong_key(w["ident"])),
        401, "E_BAD_SIGNATURE"),
    "wrong key: good request signature, batch signed by another key": (
        lambda w: (2, w["data"], B.sign_batch(_wrong_key(w["ident"]), 2, w["data"]), None),
        401, "E_BAD_SIGNATURE"),
    "tampered batch, old signature": (
        lambda w: (w["batch_no"], _tamper(w["data"]), w["sig"], None), 401, "E_BAD_SIGNATURE"),
    "replayed batch under another number": (
        lambda w: (w["batch_no"] + 1, w["data"], w["sig"], None), 401, "E_BAD_SIGNATURE"),
    "same number, other content, validly signed (a conflict, alerted)": (
        lambda w: (w["batch_no"], _tamper(w["data"]), B.sign_batch(w["ident"], w["batch_no"], _tamper(w["data"])),
                   None), 409, "E_BATCH_CONFLICT"),
    "garbage body, validly signed": (
        lambda w: (7, b"not gzip", B.sign_batch(w["ident"], 7, b"not gzip"), None), 400, "E_BATCH_FORMAT"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_forged_batch_is_refused_and_logged(world, name):
    build, status, code = CASES[name]
    hub, ident = world["hub"], world["ident"]
    before = hub.totals(ident.node_id)
    batch_no, body, sig, signer = build(world)
    r = _post(world["cfg"], hub, ident, batch_no, body, sig, sign_as=signer)
    assert r.status_code == status, r.text
    assert r.json()["ok"] is False and r.json()["error"]["code"] == code
    assert hub.totals(ident.node_id) == before
    assert any(e["code"] == code for e in hub.log(ident.node_id)[:3])


def test_exact_replay_changes_nothing(world):
    hub, ident = world["hub"], world["ident"]
    before = hub.totals(ident.node_id)
    r = _post(world["cfg"], hub, ident, world["batch_no"], world["data"], world["sig"])
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert hub.totals(ident.node_id) == before


def test_unenrolled_node_is_refused_and_logged(world):
    hub = world["hub"]
    cfg = make_config(world["tmp"] / "stranger", sync__hub_url=hub.url)
    conn = open_main(cfg)
    add_events(conn, 10)
    ident = load_or_create(cfg)
    uplink.seal(cfg, conn, ident)
    with pytest.raises(client.HubRefused) as e:
        uplink.send(cfg, conn, hub.url, ident)
    assert e.value.code == "E_NODE_UNKNOWN" and e.value.status == 401
    assert outbox.backlog(cfg)["batches"] == 1  # kept: never deleted without an ack
    assert hub.totals(ident.node_id)["events"] == 0
    assert any(e["code"] == "E_NODE_UNKNOWN" for e in hub.log(ident.node_id))
    # the scheduler's job records the refusal as a failure, with the hub's code
    from edgenode.node.sync.runner import run_job
    r = run_job(cfg, "uplink", ignore_windows=True)
    assert r["state"] == "failed" and "E_NODE_UNKNOWN" in r["message"]
    conn.close()


def test_revoked_node_is_refused(world):
    hub, tmp = world["hub"], world["tmp"]
    cfg = enrolled_node(tmp, hub, name="revoked")
    ident = load_or_create(cfg)
    from edgenode.hub.registry import revoke
    hconn = hub.db()
    revoke(hconn, ident.node_id)
    hconn.close()
    conn = open_main(cfg)
    add_events(conn, 5)
    uplink.seal(cfg, conn, ident)
    with pytest.raises(client.HubRefused) as e:
        uplink.send(cfg, conn, hub.url, ident)
    assert e.value.code == "E_NODE_REVOKED" and e.value.status in (401, 403)
    assert outbox.backlog(cfg)["batches"] == 1
    conn.close()


def test_bad_request_signature_is_refused(world):
    hub, ident = world["hub"], world["ident"]
    headers = client.signed_headers(ident, "POST", "/api/v1/heartbeat", b"{}")
    headers["X-Edgenode-Signature"] = base64.b64encode(b"\0" * 64).decode()
    r = requests.post(hub.url + "/api/v1/heartbeat", data=b"{}", headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "E_BAD_SIGNATURE"
