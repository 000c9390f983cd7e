"""Hub half of issue 6: enrolment, signed requests, idempotent batch ingest, heartbeats, USB import."""

from __future__ import annotations

import gzip
import json

import pytest

from edgenode.hub import registry, stats
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, expected_totals, make_events, new_identity, seal, snapshot, write_usb_logs


@pytest.fixture
def hub_cfg(tmp_path):
    return make_config(tmp_path / "hub")


@pytest.fixture
def hub_db(hub_cfg):
    conn = open_hub(hub_cfg)
    yield conn
    conn.close()


@pytest.fixture
def hub_client(hub_cfg, hub_db):
    app = create_hub_app(hub_cfg)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def node(hub_client, hub_db):
    n = FlaskNode(hub_client)
    r = n.enroll(registry.new_code(hub_db, township="河口镇"))
    assert r.status_code == 200, r.json
    return n


def log_codes(db, node_id=None):
    return [r["code"] for r in registry.recent_log(db, node_id, 100)]


# -- enrolment -------------------------------------------------------------------------------------

def test_enrol_spends_the_code_once_and_takes_the_codes_township(hub_client, hub_db):
    code = registry.new_code(hub_db, township="河口镇")
    a = FlaskNode(hub_client)
    r = a.enroll(code, township="别的镇")
    assert r.status_code == 200 and r.json["ok"] and r.json["node_id"] == a.node_id and r.json["hub_name"]
    assert registry.get_node(hub_db, a.node_id)["township"] == "河口镇"
    assert a.enroll(code).status_code == 200  # the same node re-sending after a lost answer
    b = FlaskNode(hub_client)
    r = b.enroll(code)
    assert r.status_code == 403 and r.json["error"]["code"] == "E_ENROLL_CODE" and r.json["error"]["message_zh"]
    assert "E_ENROLL_CODE" in log_codes(hub_db, b.node_id)


@pytest.mark.parametrize("body, status, code", [
    ({"code": "NOPE-NOPE-NOPE"}, 403, "E_ENROLL_CODE"),
    ({"node_id": "../../etc"}, 400, "E_ENROLL_NODE"),
    ({"node_id": "A" * 32}, 400, "E_ENROLL_NODE"),
    ({"public_key": "not base64!"}, 400, "E_ENROLL_KEY"),
    ({"public_key": "AAAA"}, 400, "E_ENROLL_KEY"),
])
def test_enrol_hostile_inputs_change_nothing(hub_client, hub_db, body, status, code):
    good = registry.new_code(hub_db)
    ident = new_identity()
    doc = {"code": good, "node_id": ident.node_id, "public_key": ident.public_b64(), "name": "x"}
    doc.update(body)
    r = hub_client.post("/api/v1/enroll", json=doc)
    assert r.status_code == status and r.json["error"]["code"] == code
    assert registry.list_nodes(hub_db) == []
    assert [c["state"] for c in registry.list_codes(hub_db)] == ["open"]


def test_enrol_not_json_is_refused(hub_client):
    r = hub_client.post("/api/v1/enroll", data=b"\xff\xfe", content_type="application/json")
    assert r.status_code == 400 and r.json["ok"] is False


def test_expired_and_revoked_codes_are_refused(hub_client, hub_db):
    expired = registry.new_code(hub_db, days=-1)
    assert FlaskNode(hub_client).enroll(expired).status_code == 403
    code = registry.new_code(hub_db)
    assert registry.revoke_code(hub_db, code[-4:]) == 1
    assert FlaskNode(hub_client).enroll(code).status_code == 403


def test_a_known_node_id_with_another_key_is_refused(hub_client, hub_db, node):
    from edgenode.core.identity import Identity
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    thief = FlaskNode(hub_client, Identity(node.node_id, Ed25519PrivateKey.generate()))
    r = thief.enroll(registry.new_code(hub_db))
    assert r.status_code == 409 and r.json["error"]["code"] == "E_NODE_EXISTS"
    assert registry.get_node(hub_db, node.node_id)["public_key"] == node.ident.public_b64()


# -- signed requests -------------------------------------------------------------------------------

def test_heartbeat_is_stored_with_history(hub_client, hub_db, node):
    for pct in (40.0, 41.0, 42.0):
        r = node.heartbeat(disk={"total": 1, "used": 1, "free": 0, "percent": pct})
        assert r.status_code == 200 and r.json["ok"] and isinstance(r.json["server_time"], float)
    from edgenode.hub import heartbeat
    assert heartbeat.latest(hub_db, node.node_id)["disk"]["percent"] == 42.0
    assert [h["disk"]["percent"] for h in heartbeat.history(hub_db, node.node_id)] == [40.0, 41.0, 42.0]
    assert hub_db.execute("SELECT signed_ts FROM hub_latest").fetchone()[0] > 1_700_000_000


def test_heartbeat_history_is_bounded(hub_cfg, hub_db):
    from edgenode.hub import heartbeat
    ident = new_identity()
    registry.enroll(hub_db, code=registry.new_code(hub_db), node_id=ident.node_id, public_key=ident.public_b64())
    node = registry.get_node(hub_db, ident.node_id)
    for i in range(100):
        heartbeat.record(hub_db, node, json.dumps({"at": i}).encode(), signed_ts=i, keep=10)
    n = hub_db.execute("SELECT count(*) FROM hub_heartbeats").fetchone()[0]
    assert 10 <= n <= 10 + heartbeat.PRUNE_EVERY


def test_unsigned_unknown_forged_and_revoked_requests_are_refused_and_logged(hub_client, hub_db, node):
    body = json.dumps(snapshot(node.ident)).encode()
    r = hub_client.post("/api/v1/heartbeat", data=body, content_type="application/json")
    assert r.status_code == 401 and r.json["error"]["code"] == "E_UNSIGNED"
    stranger = FlaskNode(hub_client)
    r = stranger.heartbeat()
    assert r.status_code == 401 and r.json["error"]["code"] == "E_NODE_UNKNOWN"
    r = node.signed("/api/v1/heartbeat", body, signer=new_identity())  # right id, wrong key
    assert r.status_code == 401 and r.json["error"]["code"] == "E_BAD_SIGNATURE"
    # A signature for another path or body does not carry over.
    h = FlaskNode(hub_client, node.ident)
    from edgenode.hub.signing import sign_headers
    headers = sign_headers(node.ident, "POST", "/api/v1/heartbeat", b"{}", 1)
    r = hub_client.post("/api/v1/heartbeat", data=body, headers=headers, content_type="application/json")
    assert r.status_code == 401 and r.json["error"]["code"] == "E_BAD_SIGNATURE"
    assert h.heartbeat().status_code == 200
    registry.revoke(hub_db, node.node_id)
    r = node.heartbeat()
    assert r.status_code == 403 and r.json["error"]["code"] == "E_NODE_REVOKED"
    data, sig = seal(node.ident, 1, make_events(3))
    r = node.upload(1, data, sig)
    assert r.status_code == 403 and r.json["error"]["code"] == "E_NODE_REVOKED"
    r = node.enroll(registry.new_code(hub_db))
    assert r.status_code == 403
    codes = log_codes(hub_db)
    for c in ("E_UNSIGNED", "E_NODE_UNKNOWN", "E_BAD_SIGNATURE", "E_NODE_REVOKED"):
        assert c in codes
    assert hub_db.execute("SELECT count(*) FROM hub_batches").fetchone()[0] == 0


def test_a_wrong_clock_is_recorded_not_refused(node, hub_db):
    from edgenode.hub.signing import sign_headers
    body = json.dumps(snapshot(node.ident)).encode()
    headers = sign_headers(node.ident, "POST", "/api/v1/heartbeat", body, 86400 * 365 * 5)  # 1975
    r = node.client.post("/api/v1/heartbeat", data=body, headers=headers, content_type="application/json")
    assert r.status_code == 200
    assert hub_db.execute("SELECT signed_ts FROM hub_latest").fetchone()[0] == 86400 * 365 * 5


# -- batches ---------------------------------------------------------------------------------------

def test_batches_store_once_and_redelivery_changes_nothing(node, hub_db):
    batches = [make_events(50, first_seq=1 + 50 * i, seed=i) for i in range(3)]
    sealed = [seal(node.ident, i + 1, evs) for i, evs in enumerate(batches)]
    for i, (data, sig) in enumerate(sealed):
        r = node.upload(i + 1, data, sig)
        assert r.status_code == 200 and r.json == {"ok": True, "status": "stored", "contiguous": i + 1}
    before = stats.totals(hub_db)
    assert before == expected_totals(batches)
    for i, (data, sig) in enumerate(sealed):
        r = node.upload(i + 1, data, sig)
        assert r.json == {"ok": True, "status": "duplicate", "contiguous": 3}
    assert stats.totals(hub_db) == before
    assert registry.get_node(hub_db, node.node_id)["events"] == 150


def test_same_number_different_content_is_refused_with_an_alert(node, hub_db):
    data, sig = seal(node.ident, 1, make_events(10, seed=1))
    assert node.upload(1, data, sig).json["status"] == "stored"
    before = stats.totals(hub_db)
    other, other_sig = seal(node.ident, 1, make_events(10, seed=2))
    r = node.upload(1, other, other_sig)
    assert r.status_code == 409 and r.json["error"]["code"] == "E_BATCH_CONFLICT"
    assert stats.totals(hub_db) == before
    alert = hub_db.execute("SELECT * FROM hub_alerts WHERE rule = 'conflict'").fetchone()
    assert alert["node_id"] == node.node_id and alert["subject"] == "1"
    assert "E_BATCH_CONFLICT" in log_codes(hub_db, node.node_id)


def test_gaps_are_visible_in_the_contiguous_mark(node, hub_db):
    from edgenode.hub.ingest import gaps
    sealed = {n: seal(node.ident, n, make_events(5, first_seq=n * 10, seed=n)) for n in (1, 2, 4, 5, 7)}
    answers = [node.upload(n, *sealed[n]).json["contiguous"] for n in (1, 2, 4, 5, 7)]
    assert answers == [1, 2, 2, 2, 2]
    assert gaps(hub_db, node.node_id) == [3, 6]
    assert node.upload(3, *seal(node.ident, 3, make_events(5, first_seq=30, seed=3))).json["contiguous"] == 5


def _tamper(data: bytes) -> bytes:
    text = gzip.decompress(data).decode().replace('"k":"view"', '"k":"play_start"', 1)
    return gzip.compress(text.encode(), mtime=0)


@pytest.mark.parametrize("case", ["tampered", "forged_key", "garbage", "not_gzip_sig_ok", "wrong_header",
                                  "bad_number", "missing_sig", "truncated"])
def test_hostile_batches_are_refused_logged_and_change_nothing(node, hub_db, case):
    from edgenode.protocol.usage_batch import sign_batch
    evs = make_events(20, seed=5)
    data, sig = seal(node.ident, 1, evs)
    no = "1"
    if case == "tampered":
        data = _tamper(data)
    elif case == "forged_key":
        data, sig = seal(new_identity(), 1, evs)
    elif case == "garbage":
        data = b"\x00" * 100
    elif case == "not_gzip_sig_ok":
        data = b"hello"
        sig = sign_batch(node.ident, 1, data)
    elif case == "wrong_header":  # validly signed bytes naming batch 2, uploaded as batch 1
        data, _ = seal(node.ident, 2, evs)
        sig = sign_batch(node.ident, 1, data)
    elif case == "bad_number":
        no = "-3"
    elif case == "missing_sig":
        sig = ""
    elif case == "truncated":
        data = data[: len(data) // 2]
        sig = sign_batch(node.ident, 1, data)
    r = node.signed("/api/v1/batches", data, {"X-Edgenode-Batch-No": no, "X-Edgenode-Batch-Signature": sig})
    assert 400 <= r.status_code < 500 and r.json["ok"] is False
    assert r.json["error"]["code"] in {"E_BAD_SIGNATURE", "E_BATCH_FORMAT"}
    assert r.json["error"]["code"] in log_codes(hub_db, node.node_id)
    assert hub_db.execute("SELECT count(*) FROM hub_batches").fetchone()[0] == 0
    assert hub_db.execute("SELECT count(*) FROM hub_daily").fetchone()[0] == 0


def test_daily_batches_count_their_aggregates(node, hub_db):
    lines = [{"day": "2026-11-01", "r": "res-a", "c": "sannong", "k": "view", "n": 7, "d": 0.0, "u": 3},
             {"day": "2026-11-01", "r": "res-a", "c": "sannong", "k": "progress", "n": 4, "d": 3600.0, "u": 2}]
    data, sig = seal(node.ident, 1, lines, kind="daily")
    assert node.upload(1, data, sig).json["status"] == "stored"
    t = stats.totals(hub_db, {"month": "2026-11"})
    assert t == {"visits": 7, "plays": 0, "events": 11, "watch_hours": 1.0}
    row = stats.table(hub_db, "node", {"month": "2026-11"})[0]
    assert row["unique_terminals"] == 3  # the larger of the per-kind counts for that day


def test_statistics_follow_the_hub_time_zone(node, hub_db):
    # 2026-11-30 20:00 UTC is 2026-12-01 04:00 in China: a December visit.
    ev = [{"s": 1, "t": 1796068800.0, "k": "view", "m": "t1", "r": "r1", "c": "pushi", "d": 0.0, "x": None}]
    node.upload(1, *seal(node.ident, 1, ev))
    assert [r["month"] for r in stats.table(hub_db, "month")] == ["2026-12"]


# -- USB -------------------------------------------------------------------------------------------

def test_usb_import_matches_the_network_path_and_is_idempotent(tmp_path, hub_cfg, hub_client, hub_db, runner):
    from click.testing import CliRunner
    from edgenode.cli import cli
    net, usb = FlaskNode(hub_client), FlaskNode(hub_client)
    for n in (net, usb):
        n.enroll(registry.new_code(hub_db))
    batches = [make_events(40, first_seq=1 + 40 * i, seed=10 + i) for i in range(4)]
    for i, evs in enumerate(batches):
        net.upload(i + 1, *seal(net.ident, i + 1, evs))
    write_usb_logs(tmp_path / "stick", usb.ident,
                   {i + 1: seal(usb.ident, i + 1, evs) for i, evs in enumerate(batches)},
                   snap=snapshot(usb.ident))

    def run(*args):
        r = CliRunner().invoke(cli, ["--data-dir", str(hub_cfg.data_path), *args], env={"EDGENODE_CONFIG": ""})
        assert r.exit_code == 0, r.output
        return r.output

    out = json.loads(run("hub", "import-logs", str(tmp_path / "stick"), "--json"))
    assert out["nodes"][0]["stored"] == 4 and out["nodes"][0]["heartbeat"] and out["nodes"][0]["contiguous"] == 4
    first = stats.totals(hub_db, {"node_id": usb.node_id})
    assert first == stats.totals(hub_db, {"node_id": net.node_id}) == expected_totals(batches)
    out = json.loads(run("hub", "import-logs", str(tmp_path / "stick" / "edgenode-logs"), "--json"))
    assert out["nodes"][0]["stored"] == 0 and out["nodes"][0]["duplicate"] == 4
    assert stats.totals(hub_db, {"node_id": usb.node_id}) == first
    assert "IMPORT_USB" in log_codes(hub_db, usb.node_id)


def test_usb_import_refuses_unknown_revoked_and_forged(tmp_path, hub_db, hub_cfg):
    from edgenode.hub.usb import import_logs
    known = new_identity()
    registry.enroll(hub_db, code=registry.new_code(hub_db), node_id=known.node_id, public_key=known.public_b64())
    stranger = new_identity()
    evs = make_events(5)
    write_usb_logs(tmp_path / "s", stranger, {1: seal(stranger, 1, evs)})
    forged = seal(new_identity(), 1, evs)
    write_usb_logs(tmp_path / "s", known, {1: forged}, snap=snapshot(known))
    (tmp_path / "s" / "edgenode-logs" / known.node_id / "heartbeat.json").write_text('{"at": 1, "x": "edited"}')
    report = import_logs(hub_db, tmp_path / "s")
    by = {n["node_id"]: n for n in report["nodes"]}
    assert by[stranger.node_id]["refused"][0]["code"] == "E_NODE_UNKNOWN"
    assert {r["code"] for r in by[known.node_id]["refused"]} == {"E_BAD_SIGNATURE"}
    assert len(by[known.node_id]["refused"]) == 2  # the forged batch and the edited heartbeat
    assert hub_db.execute("SELECT count(*) FROM hub_batches").fetchone()[0] == 0
    registry.revoke(hub_db, known.node_id)
    write_usb_logs(tmp_path / "s", known, {1: seal(known, 1, evs)})
    report = import_logs(hub_db, tmp_path / "s")
    assert {n["node_id"]: n for n in report["nodes"]}[known.node_id]["refused"][0]["code"] == "E_NODE_REVOKED"
    assert hub_db.execute("SELECT count(*) FROM hub_batches").fetchone()[0] == 0


def test_usb_import_of_a_folder_without_logs_is_a_clear_error(tmp_path, hub_cfg):
    from click.testing import CliRunner
    from edgenode.cli import cli
    r = CliRunner().invoke(cli, ["--data-dir", str(hub_cfg.data_path), "hub", "import-logs", str(tmp_path)],
                           env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 1 and "E_USB_LOGS" in r.output
