"""Publishing: county-signed bundles in the rsync tree, a real rsync daemon, USB trees, the node's import."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import json

import pytest

from edgenode.protocol import minisign
from edgenode.protocol.bundle import MANIFEST
from edgenode.core.errors import EdgenodeError
from edgenode.hub import fleet, publish
from edgenode.hub.database import open_hub
from tests.conftest import make_config
from tests.helpers_sync import free_port


@pytest.fixture
def hub(tmp_path):
    cfg = make_config(tmp_path / "hub", hub__rsync_port=free_port(), hub__rsync_hosts_allow="127.0.0.1")
    conn = open_hub(cfg)
    yield cfg, conn
    conn.close()


@pytest.fixture
def src(tmp_path, media_dir):
    d = tmp_path / "src"
    d.mkdir()
    shutil.copy(media_dir["mp4"], d / "水稻插秧.mp4")
    shutil.copy(media_dir["mp3"], d / "戏曲选段.mp3")
    return d


@contextlib.contextmanager
def rsyncd(hub_cfg, workdir):
    """A real rsync daemon serving the hub's tree with the config `hub rsyncd-conf` prints."""
    conf = workdir / "rsyncd.conf"
    conf.write_text(publish.rsyncd_conf(hub_cfg))
    proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"rsync://127.0.0.1:{hub_cfg.hub.rsync_port}/edgenode"
    try:
        deadline = time.time() + 10
        while subprocess.run(["rsync", url + "/"], capture_output=True).returncode != 0:
            assert time.time() < deadline, "rsync daemon did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(5)


def _trust_county(node_conn, hub_cfg):
    from edgenode.node.imports import trust
    trust.add_key(node_conn, minisign.load_public_key(publish.county_public_key_path(hub_cfg)), ["county"])


def test_publish_signs_with_the_county_key_and_rises(hub, src):
    cfg, conn = hub
    r = publish.publish(conn, cfg, src, "county")
    bundle = publish.channels_root(cfg) / "county" / "county-00000001"
    assert r["seq"] == 1 and bundle.is_dir() and not any((publish.rsync_root(cfg) / ".staging").iterdir())
    data = (bundle / MANIFEST).read_bytes()
    pk = minisign.load_public_key(publish.county_public_key_path(cfg))
    minisign.verify_bytes(data, (bundle / (MANIFEST + ".minisig")).read_text(), pk)
    assert oct((cfg.data_path / "hub_keys" / "county.key").stat().st_mode & 0o777) == "0o600"
    assert publish.publish(conn, cfg, src, "county")["seq"] == 2
    assert fleet.latest_channels(conn) == {"county": 2}
    with pytest.raises(EdgenodeError) as e:
        publish.publish(conn, cfg, src, "county", seq=2)
    assert e.value.code == "E_PUBLISH_SEQ"
    (src.parent / "empty").mkdir()
    with pytest.raises(EdgenodeError) as e:
        publish.publish(conn, cfg, src.parent / "empty", "county")
    assert e.value.code == "E_BUILD_EMPTY"
    assert fleet.latest_channels(conn) == {"county": 2}


def test_a_real_rsync_daemon_serves_the_tree_and_the_node_imports_it(hub, src, tmp_path, cfg, conn, store):
    hub_cfg, hub_conn = hub
    publish.publish(hub_conn, hub_cfg, src, "county")
    (tmp_path / "w").mkdir()
    with rsyncd(hub_cfg, tmp_path / "w") as url:
        p = subprocess.run(["rsync", "-a", url + "/channels/county/", str(tmp_path / "pulled")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        # Read-only: an upload is refused by the daemon.
        up = subprocess.run(["rsync", "-a", str(src) + "/", url + "/x/"], capture_output=True, text=True)
        assert up.returncode != 0
    from edgenode.node.imports.pipeline import import_tree
    _trust_county(conn, hub_cfg)
    results = import_tree(cfg, conn, store, tmp_path / "pulled", source="rsync")
    assert [r.result for r in results] == ["imported"], [r.error for r in results]
    titles = {r[0] for r in conn.execute("SELECT title FROM resources WHERE channel = 'county'")}
    assert titles == {"水稻插秧", "戏曲选段"}


def test_usb_tree_is_importable_and_idempotent(hub, src, tmp_path, cfg, conn, store, runner):
    hub_cfg, hub_conn = hub
    publish.publish(hub_conn, hub_cfg, src, "county")
    publish.publish(hub_conn, hub_cfg, src, "county")
    r = publish.usb_tree(hub_conn, hub_cfg, tmp_path / "stick")
    assert [(b["bundle_dir"], b["status"]) for b in r["bundles"]] == [("county-00000002", "copied")]
    assert (tmp_path / "stick" / "edgenode-bundles" / "county.pub").exists()
    again = publish.usb_tree(hub_conn, hub_cfg, tmp_path / "stick")
    assert [b["status"] for b in again["bundles"]] == ["present"]
    from edgenode.node.imports.pipeline import import_tree
    _trust_county(conn, hub_cfg)
    assert [x.result for x in import_tree(cfg, conn, store, tmp_path / "stick", source="usb")] == ["imported"]


def test_accept_a_bundle_signed_upstream_unchanged(hub, src, tmp_path):
    hub_cfg, hub_conn = hub
    prov = make_config(tmp_path / "province")
    prov_conn = open_hub(prov)
    built = publish.publish(prov_conn, prov, src, "province")
    r = publish.accept_signed(hub_conn, hub_cfg, built["bundle"],
                              trusted=[minisign.load_public_key(publish.county_public_key_path(prov))])
    assert r["source"] == "upstream" and fleet.latest_channels(hub_conn) == {"province": 1}
    mine = publish.channels_root(hub_cfg) / "province" / "province-00000001" / MANIFEST
    assert mine.read_bytes() == (publish.channels_root(prov) / "province" / "province-00000001" / MANIFEST).read_bytes()
    with pytest.raises(EdgenodeError) as e:  # signed by someone the county does not trust
        publish.accept_signed(hub_conn, hub_cfg, built["bundle"],
                              trusted=[minisign.load_public_key(publish.county_public_key_path(hub_cfg))])
    assert e.value.code.startswith("E_SIG")
    prov_conn.close()


def test_a_county_pulls_and_republishes_only_what_its_upstream_signed(tmp_path, src, runner):
    from click.testing import CliRunner
    from edgenode.cli import cli
    prov = make_config(tmp_path / "province", hub__rsync_port=free_port())
    pconn = open_hub(prov)
    publish.publish(pconn, prov, src, "province")
    county = make_config(tmp_path / "county")
    (tmp_path / "w").mkdir()

    def pull(*keys):
        args = ["--data-dir", str(county.data_path), "hub", "upstream", "pull", url + "/channels/", "--json"]
        for k in keys:
            args += ["--trust-key", str(k)]
        r = CliRunner().invoke(cli, args, env={"EDGENODE_CONFIG": ""})
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    prov_key = publish.county_public_key_path(prov)
    with rsyncd(prov, tmp_path / "w") as url:
        r = pull(prov_key)
        assert [(b["channel"], b["seq"], b["source"]) for b in r["republished"]] == [("province", 1, "upstream")]
        assert pull(prov_key)["present"] == 1
        # A bundle changed after signing upstream (or by anyone on the way) is refused.
        publish.publish(pconn, prov, src, "province")
        m = publish.channels_root(prov) / "province" / "province-00000002" / MANIFEST
        m.write_bytes(m.read_bytes().replace("戏曲选段".encode(), "假冒内容".encode()))
        r = pull(prov_key)
        assert r["refused"] == [{"bundle": "province-00000002", "code": "E_SIG_INVALID"}] or \
            r["refused"][0]["code"].startswith("E_SIG")
        # Someone else's key is not the upstream's.
        r = pull(publish.county_public_key_path(county))
        assert r["republished"] == [] and r["refused"]
    cconn = open_hub(county)
    assert fleet.latest_channels(cconn) == {"province": 1}
    assert (publish.channels_root(county) / "province" / "province-00000001" / MANIFEST).exists()
    assert not (publish.channels_root(county) / "province" / "province-00000002").exists()
    cconn.close()
    pconn.close()


def test_shipped_rsyncd_conf_matches_what_the_settings_generate():
    from pathlib import Path
    from edgenode.core.config import load_config

    def settings(text):
        return {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")}

    shipped = (Path(__file__).resolve().parent.parent / "systemd" / "rsyncd.conf").read_text()
    assert settings(shipped) == settings(publish.rsyncd_conf(load_config(env={}), "edgenode", "edgenode"))


def test_the_hourly_pull_reads_its_upstream_from_the_config(tmp_path, src):
    """edgenode-hub-pull.timer runs `edgenode hub upstream pull` with no arguments."""
    from click.testing import CliRunner
    from edgenode.cli import cli
    prov = make_config(tmp_path / "province", hub__rsync_port=free_port())
    pconn = open_hub(prov)
    publish.publish(pconn, prov, src, "province")
    county = tmp_path / "county"
    (tmp_path / "w").mkdir()

    def pull(**env):
        r = CliRunner().invoke(cli, ["--data-dir", str(county), "hub", "upstream", "pull", "--json"],
                               env={"EDGENODE_CONFIG": "", **env})
        return r.exit_code, r.output

    code, out = pull()  # a top-tier hub: nothing configured, nothing to do, not an error
    assert code == 0 and json.loads(out) == {"status": "not configured"}
    with rsyncd(prov, tmp_path / "w") as url:
        code, out = pull(EDGENODE_HUB_UPSTREAM_RSYNC_URL=url + "/channels/")
        assert code == 1 and "E_NO_UPSTREAM_KEYS" in out  # never republish what nobody can verify
        keys = json.dumps([str(publish.county_public_key_path(prov))])
        code, out = pull(EDGENODE_HUB_UPSTREAM_RSYNC_URL=url + "/channels/", EDGENODE_HUB_UPSTREAM_KEYS=keys)
        assert code == 0, out
        assert [(b["channel"], b["seq"]) for b in json.loads(out)["republished"]] == [("province", 1)]
    pconn.close()


def test_the_generated_rsyncd_conf_serves_as_the_trees_owner(tmp_path):
    """Started as root with no uid, rsync 3.2.7 (Debian 12) drops to nobody and cannot read a 0700 tree."""
    import grp
    import os
    import pwd
    from edgenode.core.config import load_config

    cfg = load_config(None, overrides={"data_dir": str(tmp_path)})
    root = publish.rsync_root(cfg)
    root.mkdir(parents=True)
    root.chmod(0o700)
    conf = publish.rsyncd_conf(cfg)
    st = root.stat()
    assert f"uid = {pwd.getpwuid(st.st_uid).pw_name}\n" in conf
    assert f"gid = {grp.getgrgid(st.st_gid).gr_name}\n" in conf
    assert "uid = county\n" in publish.rsyncd_conf(cfg, "county", "county")
    assert os.stat(root).st_mode & 0o777 == 0o700


def test_sequence_zero_is_refused_not_renumbered(hub, src):
    cfg, conn = hub
    with pytest.raises(EdgenodeError) as e:
        publish.publish(conn, cfg, src, "county", seq=0)
    assert e.value.code == "E_PUBLISH_SEQ", e.value.message
    assert publish.publish(conn, cfg, src, "county")["seq"] == 1  # nothing was taken by the refusal
