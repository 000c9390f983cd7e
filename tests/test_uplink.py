"""Usage uplink against the real hub on loopback: enrol, seal, send, ack, dedup, cap, USB round trip."""

from __future__ import annotations

import json

import pytest

from edgenode.core.db import open_main
from edgenode.core.identity import load_or_create
from edgenode.node.sync import outbox, uplink
from edgenode.node.sync.runner import run_job
from tests.helpers_sync import Hub, add_events, enrolled_node


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub")).start()
    yield h
    h.stop()


def test_enrol_seal_send_delete_on_ack(tmp_path, hub):
    cfg = enrolled_node(tmp_path, hub, sync__batch_max_events=400)
    conn = open_main(cfg)
    seconds = add_events(conn, 1000)
    r = run_job(cfg, "uplink", ignore_windows=True)
    assert r["state"] == "done", r
    assert r["result"]["sealed_events"] == 1000 and r["result"]["sent"] == 3
    node = load_or_create(cfg).node_id
    t = hub.totals(node)
    assert t["events"] == t["daily_n"] == t["batch_events"] == 1000
    assert t["daily_seconds"] == pytest.approx(seconds)
    assert t["contiguous"] == 3
    assert outbox.backlog(cfg) == {"batches": 0, "bytes": 0, "oldest": None}
    # nothing new: nothing sent, nothing doubled
    assert run_job(cfg, "uplink", ignore_windows=True)["result"]["sent"] == 0
    add_events(conn, 10, seed=1)
    assert run_job(cfg, "uplink", ignore_windows=True)["result"]["sent"] == 1
    assert hub.totals(node)["events"] == 1010 and hub.totals(node)["contiguous"] == 4
    conn.close()


def test_resend_after_lost_ack_is_a_duplicate(tmp_path, hub):
    cfg = enrolled_node(tmp_path, hub)
    conn = open_main(cfg)
    add_events(conn, 50)
    ident = load_or_create(cfg)
    uplink.seal(cfg, conn, ident)
    (batch_no, path), = outbox.batch_files(cfg)
    kept = path.read_bytes(), outbox.sig_path(path).read_bytes()
    assert uplink.send(cfg, conn, hub.url, ident)["sent"] == 1
    # the ack was "lost": the node still has the file and sends it again
    path.write_bytes(kept[0])
    outbox.sig_path(path).write_bytes(kept[1])
    r = uplink.send(cfg, conn, hub.url, ident)
    assert r["duplicate"] == 1 and not path.exists()
    assert hub.totals(ident.node_id)["events"] == 50
    conn.close()


def test_heartbeat_reaches_the_hub(tmp_path, hub):
    cfg = enrolled_node(tmp_path, hub)
    r = run_job(cfg, "heartbeat", ignore_windows=True)
    assert r["state"] == "done", r
    assert isinstance(r["result"]["server_time"], (int, float))
    from edgenode.hub.heartbeat import latest
    conn = hub.db()
    snap = latest(conn, load_or_create(cfg).node_id)
    conn.close()
    assert snap["node_id"] == load_or_create(cfg).node_id
    for key in ("version", "at", "boot_id", "uptime", "disk", "cpu_percent", "mem_percent", "catalog", "outbox",
                "last_pull", "last_uplink", "clock"):
        assert key in snap, key
    assert set(snap["disk"]) >= {"total", "used", "free", "percent"}


def test_bad_enrolment_code_is_refused(tmp_path, hub, runner):
    res = runner("enroll", hub.url, "--code", "WRONG-CODE")
    assert res.exit_code == 1 and "E_ENROLL_CODE" in res.output
    code = hub.new_code()
    assert runner("enroll", hub.url, "--code", code).exit_code == 0
    # the same node again (a lost answer) is accepted; another node cannot reuse the code
    assert runner("enroll", hub.url, "--code", code).exit_code == 0
    from edgenode.cli import cli
    from click.testing import CliRunner
    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "other"), "enroll", hub.url, "--code", code],
                             env={"EDGENODE_CONFIG": ""})
    assert res.exit_code == 1 and "E_ENROLL_CODE" in res.output


def test_usb_round_trip_matches_network_totals(tmp_path, hub):
    # The same events reach one hub by network and another by USB (`edgenode hub import-logs`):
    # same totals; importing the stick twice changes nothing.
    hub2 = Hub(tmp_path / "hub2").start()
    try:
        cfg = enrolled_node(tmp_path, hub2, sync__batch_max_events=300)
        conn = open_main(cfg)
        from edgenode.node.sync.enroll import enroll
        enroll(cfg, conn, hub.url, hub.new_code())  # the network hub is the node's hub from now on
        add_events(conn, 1000, seed=3)
        node = load_or_create(cfg)
        stick = tmp_path / "stick"
        stick.mkdir()
        from edgenode.node.sync.export import export_logs
        exported = export_logs(cfg, conn, stick)
        assert exported["events"] == 1000 and exported["batches"] == 4
        d = stick / "edgenode-logs" / node.node_id
        assert json.loads((d / "node.json").read_text())["public_key"] == node.public_b64()
        assert (d / "heartbeat.json.sig").exists()
        assert run_job(cfg, "uplink", ignore_windows=True)["result"]["sent"] == 4
        first = json.loads(hub2.cli("import-logs", str(stick), "--json"))
        again = json.loads(hub2.cli("import-logs", str(stick), "--json"))
        assert first["nodes"][0]["stored"] == 4 and first["nodes"][0]["heartbeat"]
        assert again["nodes"][0]["duplicate"] == 4 and again["nodes"][0]["stored"] == 0
        net, usb = hub.totals(node.node_id), hub2.totals(node.node_id)
        assert net == usb and usb["events"] == 1000
        conn.close()
    finally:
        hub2.stop()


def test_export_while_an_upload_holds_the_outbox(tmp_path, monkeypatch):
    from edgenode.node.sync import export
    from tests.conftest import make_config
    cfg = make_config(tmp_path / "node", sync__batch_max_events=100)
    conn = open_main(cfg)
    add_events(conn, 250)
    uplink.seal(cfg, conn)
    add_events(conn, 40, seed=5)  # not sealed yet
    stick = tmp_path / "stick"
    stick.mkdir()
    monkeypatch.setattr(export, "LOCK_WAIT", 0.3)
    with outbox.locked(cfg):  # as a long upload would
        r = export.export_logs(cfg, conn, stick)
    assert r["outbox_busy"] and r["batches"] == 3 and r["events"] == 250
    r = export.export_logs(cfg, conn, stick)  # free again: seals the rest
    assert not r["outbox_busy"] and r["batches"] == 4 and r["events"] == 290
    conn.close()
