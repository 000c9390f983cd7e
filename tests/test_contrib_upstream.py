"""Contributions up to the county (issue 21): signed, resumable, acknowledged by hash, exactly once;
the county's review, the signed bundle, and a second node importing it."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.node.contrib import moderation, process, upstream
from edgenode.node.contrib import queries as q
from tests.helpers_contrib import UploadCuttingProxy, add_contribution, exif_location, make_video, sha256
from tests.helpers_sync import ROOT, Hub, _env, enrolled_node

MB = 1024 * 1024


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


def hub_rows(hub) -> list[dict]:
    conn = hub.db()
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM hub_contrib ORDER BY cid")]
    finally:
        conn.close()


def _works(hub, row) -> Path:
    return hub.data_dir / "contrib" / "works" / f"{row['node_id']}-{row['cid']}.{row['ext']}"


def _check_invariant(cfg, conn, hub, expected: dict[str, str]) -> None:
    """Nothing deleted from the node before the hub holds the whole file with the same hash."""
    received = {r["cid"]: r for r in hub_rows(hub) if r["state"] != "receiving"}
    for cid, digest in expected.items():
        row = q.contribution(conn, cid)
        on_node = process.ready_file(cfg, row).exists()
        if not on_node:
            assert cid in received and sha256(_works(hub, received[cid])) == digest, cid
        if row["state"] == "uploaded":
            assert cid in received


def test_approved_contributions_go_up_signed_and_are_deleted_only_after_the_ack(tmp_path, hub):
    cfg = enrolled_node(tmp_path, hub, contrib__chunk_mb=1)
    conn = open_main(cfg)
    big = add_contribution(cfg, conn, make_video(tmp_path / "big.mp4", seconds=4, size="640x360", noise=True))
    pending = add_contribution(cfg, conn, make_video(tmp_path / "p.mp4"), approve=False)
    digest = q.contribution(conn, big)["sha256"]
    assert q.contribution(conn, big)["size"] > 2 * MB  # several chunks
    proxy = UploadCuttingProxy(hub.port, cuts=3, max_bytes=3 * MB, seed=21)
    url = f"http://127.0.0.1:{proxy.port}"
    for _ in range(10):
        try:
            upstream.send_all(cfg, conn, url)
        except Exception:  # a cut: HubUnreachable; the next try resumes from the hub's offset
            _check_invariant(cfg, conn, hub, {big: digest})
        if q.contribution(conn, big)["state"] == "uploaded":
            break
    proxy.close()
    assert proxy.cuts_done == 3
    rows = hub_rows(hub)
    assert [(r["cid"], r["state"], r["sha256"]) for r in rows] == [(big, "received", digest)]
    assert sha256(_works(hub, rows[0])) == digest and not exif_location(_works(hub, rows[0]))
    assert q.contribution(conn, big)["state"] == "uploaded" and moderation.files_of(cfg, big) == []
    assert q.contribution(conn, pending)["state"] == "pending" and moderation.files_of(cfg, pending)  # never sent
    # Sending again changes nothing at the hub (the offer of a finished work is answered "complete").
    upstream.send_all(cfg, conn, hub.url)
    assert len(hub_rows(hub)) == 1
    conn.close()


def _publish_campaign(hub, tmp_path) -> None:
    """The county's campaign, published in the contributions' channel like any county campaign."""
    src = tmp_path / "campaign-src"
    src.mkdir()
    make_video(src / "sample.mp4", gps=False)
    now = time.time()
    (src / "programme.json").write_text(json.dumps({"campaigns": [{
        "id": "weishipin-2026", "title": "2026 微视频征集", "rules": "每人每天限投三票。", "start": now - 3600,
        "end": now + 86400, "daily_limit": 3, "items": [{"id": "sample", "title": "县里的样片"}]}]},
        ensure_ascii=False), encoding="utf-8")
    hub.cli("publish", str(src), "--channel", "shequ")


def test_county_review_publishes_a_signed_bundle_that_joins_the_campaign_at_another_node(tmp_path, hub):
    _publish_campaign(hub, tmp_path)
    cfg = enrolled_node(tmp_path, hub)
    conn = open_main(cfg)
    a = add_contribution(cfg, conn, make_video(tmp_path / "a.mp4"), title="村晚", campaign="shequ.weishipin-2026")
    b = add_contribution(cfg, conn, make_video(tmp_path / "b.mp4"), title="广场舞")
    upstream.send_all(cfg, conn, hub.url)
    node_id = hub_rows(hub)[0]["node_id"]
    hub.cli("contrib", "adopt", node_id, a, "--column", "shequ", "--credit", "李大娘舞蹈队")
    hub.cli("contrib", "decline", node_id, b, "--reason", "画面太暗")
    out = json.loads(hub.cli("contrib", "publish"))
    assert out["works"] == 1 and out["campaigns"] == ["weishipin-2026"] and out["not_joined"] == {}
    upstream.send_all(cfg, conn, hub.url)  # fetches the county's decisions
    assert (q.contribution(conn, a)["state"], q.contribution(conn, b)["state"]) == ("adopted", "declined")
    shown = {c["id"]: (c["state_zh"], c["reason"]) for c in moderation.listing(conn)}  # the admin page's rows
    assert shown == {a: ("县中心已采用", ""), b: ("未采用", "画面太暗")}
    conn.close()
    # A second node imports the signed bundles from the hub's tree (the county key came with enrolment).
    other = enrolled_node(tmp_path, hub, name="node2")
    for bundle in sorted((hub.data_dir / "rsync" / "channels" / "shequ").iterdir()):
        r = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(other.data_path), "import",
                            str(bundle)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout
    c2 = open_main(other)
    work = f"qz-{a[:16]}"
    res = c2.execute("SELECT title, description FROM resources WHERE id = ?", (f"shequ.{work}",)).fetchone()
    assert res["title"] == "村晚" and "李大娘舞蹈队" in res["description"]
    # The work joined the campaign (rules and limit kept) and takes votes there.
    from edgenode.node.app import create_app
    from edgenode.node.campaigns import queries as cq
    from tests.helpers_portal import csrf_token
    camp = cq.get_campaign(c2, "shequ.weishipin-2026")
    assert camp["rules"] == "每人每天限投三票。" and camp["daily_limit"] == 3
    items = {it["item_id"]: it for it in camp["items"]}
    assert set(items) == {"sample", work} and items[work]["title"] == "村晚"
    assert items[work]["resource_id"] == f"shequ.{work}"  # the item plays the work itself
    c2.close()
    client = create_app(other).test_client()
    token = csrf_token(client, "/campaigns/shequ.weishipin-2026")
    r = client.post("/campaigns/shequ.weishipin-2026/vote", data={"item": work, "csrf_token": token})
    assert r.status_code == 200 and "投票成功" in r.get_data(as_text=True)


def test_paced_to_the_window_then_forged_and_replayed_transfers_change_nothing(tmp_path, hub):
    from edgenode.core.identity import load_or_create
    from edgenode.node.sync import client
    cfg = enrolled_node(tmp_path, hub)
    conn = open_main(cfg)
    cid = add_contribution(cfg, conn, make_video(tmp_path / "a.mp4", seconds=1, noise=True))
    row = q.contribution(conn, cid)
    assert 300 * 1024 < row["size"] < 2 * MB
    ident = load_or_create(cfg)
    data = process.ready_file(cfg, row).read_bytes()
    # Through the uplink hook in an open window of 200 KiB/s: paced to it, never above.
    window = cfg.replace(sync__windows=[{"start": "00:00", "end": "23:59", "bwlimit": 200}])
    t = time.monotonic()
    assert upstream.after_uplink(window, conn)["contrib_sent"] == 1
    assert time.monotonic() - t >= len(data) / (200 * 1024) * 0.9
    before = hub_rows(hub)
    # Replay: the same signed chunk again, at offset 0 → the work is complete, nothing is written.
    ans = client.call(cfg, hub.url, "POST", f"/api/v1/contrib/{cid}/chunk", body=data[:1000], ident=ident,
                      content_type="application/octet-stream", headers={"X-Edgenode-Offset": "0"})
    assert ans["complete"] and ans["sha256"] == row["sha256"]
    # Forged: another key signing as this node; and a chunk body altered after signing.
    from tests.helpers_hub import new_identity
    forger = new_identity()
    forger.node_id = ident.node_id
    with pytest.raises(client.HubRefused) as e:
        client.call(cfg, hub.url, "POST", "/api/v1/contrib/offer", body=b'{"id": "' + b"0" * 32 + b'"}', ident=forger)
    assert e.value.code == "E_BAD_SIGNATURE"
    import requests
    headers = client.signed_headers(ident, "POST", f"/api/v1/contrib/{cid}/chunk", data[:10])
    r = requests.post(hub.url + f"/api/v1/contrib/{cid}/chunk", data=data[10:20],
                      headers={**headers, "X-Edgenode-Offset": "0"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "E_BAD_SIGNATURE"
    # The same id offered again with other content: a conflict, logged, nothing replaced.
    offer = {**upstream._offer_doc(row), "sha256": "0" * 64}
    with pytest.raises(client.HubRefused) as e:
        client.call(cfg, hub.url, "POST", "/api/v1/contrib/offer", body=json.dumps(offer).encode(), ident=ident)
    assert e.value.code == "E_CONTRIB_CONFLICT"
    assert hub_rows(hub) == before
    # A file that rotted on the node after approval: the hub's whole-file hash refuses it, the node
    # sees its own copy is bad, keeps it and sends the other works.
    bad = add_contribution(cfg, conn, make_video(tmp_path / "b.mp4", seconds=1))
    good = add_contribution(cfg, conn, make_video(tmp_path / "c.mp4", seconds=1))
    rotten = process.ready_file(cfg, q.contribution(conn, bad))
    rotten.write_bytes(rotten.read_bytes()[:-4] + b"rot!")
    out = upstream.send_all(cfg, conn, hub.url)
    assert out["sent"] == 1 and out["refused"] == [{"id": bad, "code": "E_CONTRIB_LOCAL_CORRUPT"}]
    assert q.contribution(conn, bad)["state"] == "approved" and rotten.exists()
    assert {r["cid"]: r["state"] for r in hub_rows(hub)} == {cid: "received", bad: "receiving", good: "received"}
    conn.close()


def _kill_rounds(tmp_path, hub, kills: int, hub_kills: int, seed: int) -> None:
    cfg = enrolled_node(tmp_path, hub, contrib__chunk_mb=1)
    conn = open_main(cfg)
    expected = {}
    for i in range(3):
        cid = add_contribution(cfg, conn, make_video(tmp_path / f"v{i}.mp4", seconds=1 + i, size="640x360", noise=True))
        expected[cid] = q.contribution(conn, cid)["sha256"]
    rnd = random.Random(seed)
    env = {**_env(), "EDGENODE_CONTRIB_CHUNK_MB": "1"}
    cmd = [sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), "contrib", "send"]
    hub_kill_at = set(rnd.sample(range(kills), hub_kills))
    for i in range(kills):
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        time.sleep(rnd.uniform(0.3, 1.2))
        if i in hub_kill_at:
            hub.kill()
            hub.start()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        _check_invariant(cfg, conn, hub, expected)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    rows = {r["cid"]: r for r in hub_rows(hub)}
    assert set(rows) == set(expected)  # exactly once: one row each, no more
    for cid, digest in expected.items():
        assert rows[cid]["state"] == "received" and sha256(_works(hub, rows[cid])) == digest
        assert q.contribution(conn, cid)["state"] == "uploaded" and moderation.files_of(cfg, cid) == []
    conn.close()


def test_sigkill_of_the_transfer_and_of_the_hub(tmp_path, hub):
    _kill_rounds(tmp_path, hub, kills=4, hub_kills=1, seed=21)


@pytest.mark.slow
def test_sigkill_of_the_transfer_50_times_and_of_the_hub_10_times(tmp_path, hub):
    _kill_rounds(tmp_path, hub, kills=50, hub_kills=10, seed=2121)



def test_an_adopted_work_is_forwarded_to_the_upstream_tier(tmp_path, hub):
    """County → province: the county hub sends a work it adopted and marked, signed with its own
    tier identity, resumably; the province holds it whole once, and a second run sends nothing."""
    province = Hub(tmp_path / "province").start()
    try:
        hub.cli("upstream", "enroll", province.url, "--code", province.new_code())
        cfg = enrolled_node(tmp_path, hub)
        conn = open_main(cfg)
        cid = add_contribution(cfg, conn, make_video(tmp_path / "a.mp4", seconds=2, noise=True), title="送省里的村晚")
        upstream.send_all(cfg, conn, hub.url)
        conn.close()
        node_id = hub_rows(hub)[0]["node_id"]
        hub.cli("contrib", "adopt", node_id, cid)
        hub.cli("contrib", "forward", node_id, cid)
        out = json.loads(hub.cli("housekeeping", "--json"))
        assert out["contrib_forward"] == {"forwarded": 1}, out
        rows = hub_rows(province)
        county_id = rows[0]["node_id"]
        assert [(r["cid"], r["state"], r["title"]) for r in rows] == [(cid, "received", "送省里的村晚")]
        assert county_id != node_id  # the province knows the county hub, not the village node
        assert sha256(_works(province, rows[0])) == hub_rows(hub)[0]["sha256"]
        assert json.loads(hub.cli("contrib", "forward-now")) == {"forwarded": 0}
        assert hub_rows(hub)[0]["forwarded_at"]
    finally:
        province.stop()
