"""A point with no link (issue 21): contributions ride the usage-log stick to the county, and the
county's signed acknowledgements ride back; only then does the point delete its copies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgenode.core.db import open_main
from edgenode.node.contrib import moderation
from edgenode.node.contrib import queries as q
from edgenode.protocol import minisign
from tests.helpers_contrib import add_contribution, make_video, sha256
from tests.helpers_sync import ROOT, Hub, _env, enrolled_node


@pytest.fixture
def hub(tmp_path):
    h = Hub(tmp_path / "hub").start()
    yield h
    h.stop()


def node_cli(cfg, *args) -> str:
    r = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(cfg.data_path), *args], cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def test_the_stick_carries_contributions_up_and_acknowledgements_back(tmp_path, hub):
    cfg = enrolled_node(tmp_path, hub)
    conn = open_main(cfg)
    ids = [add_contribution(cfg, conn, make_video(tmp_path / f"{n}.mp4"), title=f"作品{n}") for n in "ab"]
    digests = {cid: q.contribution(conn, cid)["sha256"] for cid in ids}
    stick = tmp_path / "stick"
    stick.mkdir()
    node_cli(cfg, "export-logs", str(stick))
    folder = next((stick / "edgenode-contrib").iterdir())
    assert sorted(p.name for p in folder.glob("*.mp4")) == sorted(f"{c}.mp4" for c in ids)
    assert all(moderation.files_of(cfg, c) for c in ids)  # exported is not acknowledged: kept
    # A tampered file on the stick is refused at the county; the other one arrives.
    tampered = folder / f"{ids[1]}.mp4"
    good = tampered.read_bytes()
    tampered.write_bytes(good[:-10] + b"0123456789")
    out = json.loads(hub.cli("contrib", "import-stick", str(stick)))
    assert out["stored"] == 1 and out["refused"] == [{"file": f"{ids[1]}.json", "code": "E_CONTRIB_HASH"}]
    tampered.write_bytes(good)
    out = json.loads(hub.cli("contrib", "import-stick", str(stick)))
    assert (out["stored"], out["duplicate"]) == (1, 1)  # exactly once, whatever the order of trips
    hconn = hub.db()
    rows = {r["cid"]: dict(r) for r in hconn.execute("SELECT * FROM hub_contrib")}
    hconn.close()
    assert {c: (r["state"], r["sha256"], r["source"]) for c, r in rows.items()} == \
        {c: ("received", digests[c], "usb") for c in ids}
    works = hub.data_dir / "contrib" / "works"
    assert sorted(sha256(p) for p in works.iterdir()) == sorted(digests.values())
    # A forged acknowledgement (another key) deletes nothing.
    acks, sig = (folder / "acks.json").read_bytes(), (folder / "acks.json.minisig").read_text()
    (folder / "acks.json.minisig").write_text(minisign.sign_bytes(acks, minisign.generate_keypair()))
    node_cli(cfg, "export-logs", str(stick))
    assert all(q.contribution(conn, c)["state"] == "approved" and moderation.files_of(cfg, c) for c in ids)
    # The county's real acknowledgement: the point deletes both and clears them off the stick.
    (folder / "acks.json.minisig").write_text(sig)
    node_cli(cfg, "export-logs", str(stick))
    assert all(q.contribution(conn, c)["state"] == "uploaded" and not moderation.files_of(cfg, c) for c in ids)
    assert not list(folder.glob("*.mp4"))
    conn.close()
