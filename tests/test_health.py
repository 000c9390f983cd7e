"""The health snapshot: schema, every section filled on this machine, thresholds → warnings."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from edgenode.core import jobs
from edgenode.core.db import open_volatile, transaction
from edgenode.node.health import probes
from edgenode.node.health.snapshot import SYNC_KINDS, compact, snapshot
from edgenode.node.health.warnings import CODES, evaluate

SCHEMA = json.loads((Path(__file__).parent.parent / "edgenode" / "node" / "health" / "schema.json").read_text())
DAY = 86400


def validate(snap: dict) -> None:
    # Round-trip through JSON first: that is what every consumer receives.
    jsonschema.validate(json.loads(json.dumps(snap)), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_itself_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_snapshot_validates_and_every_section_is_filled(demo_cfg, demo_conn):
    snap = snapshot(demo_cfg, demo_conn)
    validate(snap)
    assert snap["errors"] == {}
    for section in ("node", "system", "network", "content", "sync", "software", "clock"):
        assert snap[section], section
    s = snap["system"]
    assert s["memory"]["total_bytes"] > 0 and s["disk"]["total_bytes"] > 0 and s["uptime_s"] > 0
    assert s["disk"]["path"] == str(demo_cfg.data_path)
    assert s["process"]["rss_bytes"] > 1_000_000
    assert any(not i["loopback"] and i["up"] for i in snap["network"]["interfaces"])
    # The demo library: every column has something, the store bytes match the blobs on disk.
    c = snap["content"]
    assert c["resources"]["visible"] > 0 and all(n > 0 for n in c["resources"]["by_column"].values())
    on_disk = sum(p.stat().st_size for p in demo_cfg.store_path.rglob("*") if p.is_file()
                  and ".staging" not in p.parts and ".quarantine" not in p.parts)
    assert c["store"]["bytes"] == on_disk
    assert set(snap["sync"]["jobs"]) == set(SYNC_KINDS)
    assert snap["software"]["quick_check"] == {**snap["software"]["quick_check"], "ok": True, "result": "ok"}
    assert len(snap["software"]["config_digest"]) == 16 and snap["software"]["config_digest"] == demo_cfg.digest()
    assert snap["clock"]["boot_count"] >= 1 and snap["clock"]["monotonic_s"] > 0
    assert snap["node"]["name"] == demo_cfg.node.name


def test_gateway_matches_ip_route(cfg, conn):
    if not shutil.which("ip"):
        pytest.skip("iproute2 is not installed")
    routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True, text=True,
                                       check=True).stdout or "[]")
    gw = snapshot(cfg, conn)["network"]["gateway"]
    routes = [r for r in routes if r.get("gateway")]
    if not routes:
        assert gw is None
        return
    best = min(routes, key=lambda r: r.get("metric", 0))
    assert gw == {"address": best["gateway"], "interface": best["dev"], "metric": best.get("metric", 0)}


def test_gateway_parser_picks_lowest_metric_and_skips_non_default(tmp_path):
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "tun0\t00000000\t01000A0A\t0001\t0\t0\t1\t00000000\t0\t0\t0\n")  # no RTF_GATEWAY flag
    gw, source = probes.default_gateway(route)
    assert gw == {"address": "192.0.2.1", "interface": "eth0", "metric": 100}
    assert source == str(route)


def test_sync_jobs_last_attempt_success_error(cfg, conn):
    v = open_volatile(cfg)
    try:
        now = time.time()
        ok = jobs.start(v, "pull")
        jobs.finish(v, ok, "done")
        bad = jobs.start(v, "pull")
        jobs.finish(v, bad, "failed", "E_RSYNC: connection refused")
        v.execute("UPDATE jobs SET started_at = ?, finished_at = ? WHERE id = ?", (now - 100, now - 90, ok))
        v.execute("UPDATE jobs SET started_at = ?, finished_at = ? WHERE id = ?", (now - 10, now - 5, bad))
        hb = jobs.start(v, "heartbeat")
        jobs.finish(v, hb, "done")
    finally:
        v.close()
    sync = snapshot(cfg, conn)["sync"]
    pull = sync["jobs"]["pull"]
    assert pull["last_attempt"] == pytest.approx(now - 10)
    assert pull["last_state"] == "failed"
    assert pull["last_success"] == pytest.approx(now - 90)
    assert pull["last_error"]["message"] == "E_RSYNC: connection refused"
    assert sync["jobs"]["uplink"] == {"last_attempt": None, "last_state": None, "last_success": None,
                                      "last_error": None}
    assert sync["last_contact"] >= now - 1  # the heartbeat just now
    assert sync["outbox"]["batches"] >= 0 and "available" in sync["outbox"]


def test_last_import_comes_from_the_import_history(cfg, conn):
    assert snapshot(cfg, conn)["content"]["last_import"] is None
    with transaction(conn):
        for at, result in ((1000.0, "imported"), (2000.0, "failed")):
            conn.execute("INSERT INTO imports (started_at, finished_at, source, bundle, channel, seq, result, "
                         "error_code) VALUES (?, ?, 'cli', 'b', 'sannong', 3, ?, ?)",
                         (at, at + 5, result, "E_SIGNATURE" if result == "failed" else None))
    snap = snapshot(cfg, conn)
    validate(snap)
    imp = snap["content"]["last_import"]
    assert imp["at"] == 2005.0 and imp["result"] == "failed" and imp["error_code"] == "E_SIGNATURE"


def test_boot_count_increments_once_per_boot_id(tmp_path, monkeypatch):
    boot = tmp_path / "boot_id"
    monkeypatch.setattr(probes, "BOOT_ID", boot)
    data = tmp_path / "data"
    boot.write_text("boot-one\n")
    assert probes.boot_record(data)["boot_count"] == 1
    assert probes.boot_record(data)["boot_count"] == 1  # same boot: no change
    boot.write_text("boot-two\n")
    assert probes.boot_record(data)["boot_count"] == 2
    assert probes.boot_record(data)["boot_count"] == 2
    # A corrupt counter file (power cut mid-write on an old version) starts again instead of crashing.
    (data / "health" / "boots.json").write_text("{not json")
    boot.write_text("boot-three\n")
    assert probes.boot_record(data)["boot_count"] == 1


def test_clock_that_went_backwards_is_noticed(cfg, conn):
    probes.boot_record(cfg.data_path, now=time.time() + 3 * 3600)  # "we were already 3 h later once"
    snap = snapshot(cfg, conn)
    assert snap["clock"]["behind_recorded_s"] > 3 * 3600 - 60
    codes = [w["code"] for w in snap["warnings"]]
    assert "W_CLOCK_BEHIND" in codes
    validate(snap)


def _codes(cfg, snap, now=None):
    return {w["code"]: w for w in evaluate(cfg, snap, now=now)}


def test_thresholds_from_config_turn_into_chinese_warnings(cfg, conn):
    snap = snapshot(cfg, conn)
    used = snap["system"]["disk"]["percent"]

    assert "W_DISK_FULL" not in _codes(cfg.replace(health__disk_warn_percent=100.0), snap)
    full = _codes(cfg.replace(health__disk_warn_percent=max(0.0, used - 1)), snap)["W_DISK_FULL"]
    assert full["message_zh"].startswith("磁盘空间不足") and full["title_zh"] == "磁盘空间不足"

    now = time.time()
    stale = dict(snap, sync={**snap["sync"], "last_contact": now - 4 * DAY})
    w = _codes(cfg, stale, now)["W_SYNC_STALE"]
    assert w["message_zh"].startswith("超过 3 天未同步")
    assert "W_SYNC_STALE" not in _codes(cfg.replace(health__sync_warn_days=5.0), stale, now)
    fresh = dict(snap, sync={**snap["sync"], "last_contact": now - 2 * DAY})
    assert "W_SYNC_STALE" not in _codes(cfg, fresh, now)

    # Never synced: only once the node is older than the threshold.
    assert "W_SYNC_NEVER" not in _codes(cfg, snap, now)
    old_install = dict(snap, software={**snap["software"], "installed_at": now - 10 * DAY})
    assert _codes(cfg, old_install, now)["W_SYNC_NEVER"]["message_zh"].startswith("超过 3 天未同步")

    unsynced = dict(snap, clock={**snap["clock"], "ntp_synchronized": False})
    assert _codes(cfg, unsynced)["W_CLOCK_UNSYNCED"]["message_zh"].startswith("时钟未同步")
    assert "W_CLOCK_UNSYNCED" not in _codes(cfg.replace(health__clock_warn_unsynced=False), unsynced)
    synced = dict(snap, clock={**snap["clock"], "ntp_synchronized": True})
    assert "W_CLOCK_UNSYNCED" not in _codes(cfg, synced)


def test_every_warning_code_has_chinese_title_and_the_schema_shape(cfg, conn):
    snap = snapshot(cfg, conn)
    now = time.time()
    worst = dict(snap,
                 system={**snap["system"], "disk": {**snap["system"]["disk"], "percent": 99.0}},
                 sync={**snap["sync"], "last_contact": now - 30 * DAY},
                 clock={**snap["clock"], "ntp_synchronized": False, "behind_recorded_s": 7200.0},
                 software={**snap["software"], "quick_check": {"ok": False, "result": "row 3 missing",
                                                                "checked_at": now}},
                 content={**snap["content"], "store": {"blobs": 3, "bytes": 10, "not_ok": 1}},
                 errors={"network": "OSError: boom"})
    found = evaluate(cfg, worst, now=now)
    assert {w["code"] for w in found} == set(CODES) - {"W_SYNC_NEVER"}
    assert found[0]["level"] == "error"  # most serious first
    worst["warnings"] = found
    validate(worst)


def test_a_failing_probe_leaves_the_rest(cfg, conn, monkeypatch):
    def broken():
        raise OSError("no /proc here")

    monkeypatch.setattr(probes, "network", broken)
    snap = snapshot(cfg, conn)
    assert snap["network"] is None and "OSError" in snap["errors"]["network"]
    assert snap["system"] and snap["clock"]
    assert "W_HEALTH_PARTIAL" in {w["code"] for w in snap["warnings"]}
    validate(snap)


def test_compact_heartbeat_form(demo_cfg, demo_conn):
    snap = snapshot(demo_cfg, demo_conn)
    hb = compact(snap)
    assert hb["node_id"] == snap["node"]["id"] and hb["boot_id"] == snap["clock"]["boot_id"]
    assert hb["disk"]["percent"] == snap["system"]["disk"]["percent"]
    assert hb["catalog"]["resources"] == snap["content"]["resources"]["visible"]
    assert set(hb["clock"]) == {"ntp_synced", "wall", "monotonic", "boot_count"}
    json.dumps(hb)


def test_cli_health_summary_and_json(runner, cfg, conn):
    r = runner("health")
    assert r.exit_code in (0, 2), r.output
    assert "disk" in r.output and "gateway" in r.output or "no default gateway" in r.output
    assert "quick_check" not in r.output and "database check ok" in r.output
    r = runner("health", "--json")
    snap = json.loads(r.output)
    validate(snap)
    # The human summary shows the same warnings as the JSON.
    human = runner("health").output
    for w in snap["warnings"]:
        assert w["code"] in human and w["message_zh"] in human


def test_quick_check_is_shared_between_processes_and_fresh_reruns_it(cfg, conn):
    first = snapshot(cfg, conn)["software"]["quick_check"]
    assert (cfg.data_path / "health" / "quick_check.json").exists()
    assert snapshot(cfg, conn)["software"]["quick_check"]["checked_at"] == first["checked_at"]
    # another process (the CLI here) reuses the same result instead of re-reading the database
    from click.testing import CliRunner
    from edgenode.cli import cli
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "health", "--json"], env={"EDGENODE_CONFIG": ""})
    assert json.loads(r.output)["software"]["quick_check"]["checked_at"] == first["checked_at"]
    again = snapshot(cfg, conn, fresh=True)["software"]["quick_check"]
    assert again["checked_at"] > first["checked_at"] and again["ok"]


def test_outbox_backlog_comes_from_the_sync_area(demo_cfg, demo_conn):
    outbox = pytest.importorskip("edgenode.node.sync.outbox")
    from edgenode.core.identity import load_or_create
    from edgenode.node.usage.events import record

    assert snapshot(demo_cfg, demo_conn)["sync"]["outbox"]["batches"] == 0
    record(demo_conn, [{"kind": "view", "terminal": "t1"}, {"kind": "view", "terminal": "t2"}])
    with outbox.locked(demo_cfg):  # as the uplink job does: the lock makes the outbox directory
        outbox.seal(demo_cfg, demo_conn, load_or_create(demo_cfg))
    snap = snapshot(demo_cfg, demo_conn)
    validate(snap)
    got, want = snap["sync"]["outbox"], outbox.backlog(demo_cfg)
    assert got["available"] is True and got["batches"] == want["batches"] >= 1
    assert got["bytes"] == want["bytes"] > 0 and got["oldest_at"] is not None
    assert compact(snap)["outbox"] == {"batches": want["batches"], "bytes": want["bytes"]}


def test_heartbeat_reports_channel_sequences_not_counts(cfg, conn):
    # The hub compares these with the latest published sequence ("behind on content").
    from edgenode.core.db import transaction
    from edgenode.node.health.snapshot import compact, snapshot
    with transaction(conn):
        conn.execute("INSERT INTO channel_state (channel, seq, manifest_sha256, imported_at) "
                     "VALUES ('county-sannong', 42, 'x', 0)")
    body = compact(snapshot(cfg, conn, fresh=True))
    assert body["catalog"]["channels"] == {"county-sannong": 42}
