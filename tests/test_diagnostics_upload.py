"""County staff ask a node for its diagnostics bundle; it arrives with the node's next heartbeat.

Real hub (gunicorn, `edgenode hub serve`), real node jobs, signed requests throughout.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from edgenode.hub import diagnostics as hub_diag
from edgenode.core.identity import load_or_create
from edgenode.node.sync.runner import run_job
from tests.helpers_sync import Hub

SECRET = "hub-token-that-must-not-leak-7f3a9c"


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


@pytest.fixture
def enrolled(cfg, runner, hub):
    cfg = cfg.replace(health__token=SECRET)
    assert runner("enroll", hub.url, "--code", hub.new_code()).exit_code == 0
    return cfg, load_or_create(cfg).node_id


def _bundle(hub, node_id):
    info = hub_diag.latest(hub.cfg, node_id)
    return info and info["path"].read_bytes()


def test_staff_request_then_the_next_heartbeat_uploads_once(enrolled, hub):
    cfg, node_id = enrolled
    assert run_job(cfg, "heartbeat", ignore_windows=True)["state"] == "done"
    assert _bundle(hub, node_id) is None  # nobody asked: nothing is sent

    out = json.loads(hub.cli("request-diagnostics", node_id[:8], "--json"))
    assert out["node_id"] == node_id
    res = run_job(cfg, "heartbeat", ignore_windows=True)
    assert res["state"] == "done" and res["result"]["diagnostics_bytes"] > 0
    data = _bundle(hub, node_id)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        text = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert "edgenode-diagnose/manifest.json" in names and "edgenode-diagnose/snapshot.json" in names
    assert SECRET.encode() not in text and len(text) > 1000
    conn = hub.db()
    assert hub_diag.requested(conn, node_id) is None  # the request is answered
    conn.close()
    assert "diagnostics_bytes" not in run_job(cfg, "heartbeat", ignore_windows=True)["result"]  # once only


def test_administrator_pushes_one_from_the_node(enrolled, hub, runner):
    cfg, node_id = enrolled
    res = runner("diagnose", "--upload")
    assert res.exit_code == 0 and "uploaded the diagnostics bundle" in res.output
    assert _bundle(hub, node_id)[:2] == b"\x1f\x8b"
    assert runner("diagnose").exit_code == 2  # neither --out nor --upload: a usage error
    assert runner("diagnose", "--upload", "--out", "x").exit_code == 2


def test_a_node_not_enrolled_cannot_upload(runner):
    res = runner("diagnose", "--upload")
    assert res.exit_code == 1 and "E_NOT_ENROLLED" in res.output


def test_revoked_or_unknown_nodes_cannot_be_asked(enrolled, hub):
    cfg, node_id = enrolled
    with pytest.raises(RuntimeError, match="E_NODE_UNKNOWN"):
        hub.cli("request-diagnostics", "ffffffffffffffff")
    hub.cli("revoke", node_id)
    with pytest.raises(RuntimeError, match="E_NODE_REVOKED"):
        hub.cli("request-diagnostics", node_id)
