"""/metrics: Prometheus text that passes ``promtool check metrics``, with the snapshot's values."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from edgenode.node.app import create_app
from edgenode.node.health.metrics import CONTENT_TYPE, render
from edgenode.node.health.snapshot import snapshot

TOKEN = "metrics-token-0123456789"

needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian package prometheus) "
                                                                         "is not installed")


def promtool(text: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def sample(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        assert m, f"not an exposition line: {line!r}"
        if m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    raise AssertionError(f"{name}{labels} not in the output")


@pytest.fixture
def mclient(demo_cfg):
    a = create_app(demo_cfg.replace(health__token=TOKEN))
    a.config["TESTING"] = True
    return a.test_client()


@needs_promtool
def test_metrics_endpoint_passes_promtool(mclient):
    r = mclient.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.content_type == CONTENT_TYPE
    text = r.get_data(as_text=True)
    p = promtool(text)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "edgenode_info{" in text and "edgenode_data_disk_bytes{" in text


@needs_promtool
def test_promtool_really_rejects_bad_exposition():
    # The check above would be worthless if promtool accepted anything.
    bad = "# HELP x_total A counter.\n# TYPE x_total gauge\nx_total 1\n"
    assert promtool(bad).returncode != 0


@needs_promtool
def test_hostile_label_values_are_escaped(cfg, conn):
    hostile = cfg.replace(node__name='村"文化\\服务点\n# TYPE evil counter', node__township="镇}{x=\"1\"")
    text = render(snapshot(hostile, conn))
    p = promtool(text)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "\n# TYPE evil" not in text


def test_metric_values_match_the_snapshot(demo_cfg, demo_conn):
    snap = snapshot(demo_cfg, demo_conn)
    text = render(snap)
    c = snap["content"]
    assert sample(text, "edgenode_store_size_bytes") == c["store"]["bytes"]
    for column, n in c["resources"]["by_column"].items():
        assert sample(text, "edgenode_content_resources", column=column) == n
    disk = snap["system"]["disk"]
    assert sample(text, "edgenode_data_disk_bytes", kind="total") == disk["total_bytes"]
    assert sample(text, "edgenode_db_quick_check_ok") == 1
    assert sample(text, "edgenode_boots") == snap["clock"]["boot_count"]
    assert sample(text, "edgenode_info", node_id=snap["node"]["id"]) == 1
    for w in snap["warnings"]:
        assert sample(text, "edgenode_warning_active", code=w["code"]) == 1
    # Unknown is absent, never a fake 0: nothing was ever imported in the demo.
    assert "edgenode_last_import_timestamp_seconds" not in text


def test_metrics_need_the_token_unless_public(mclient, demo_cfg):
    refused = mclient.get("/metrics")
    assert refused.status_code == 401 and b"edgenode_info" not in refused.data
    assert mclient.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    a = create_app(demo_cfg.replace(health__metrics_public=True))
    a.config["TESTING"] = True
    r = a.test_client().get("/metrics")
    assert r.status_code == 200 and "edgenode_info" in r.get_data(as_text=True)
