"""可预约下载 end to end, subscriptions, the admin page and the storage CLI.

Evicted resources stay listed, a villager's request travels upstream in a real
sealed usage batch, and the next signed bundle carrying the resource restores it.
"""

from __future__ import annotations

import functools
import json
import re

import pytest

from edgenode.core.db import open_main
from edgenode.core.errors import EdgenodeError
from edgenode.node.storage import eviction, requests, state, subscriptions
from edgenode.core.store import open_store
from tests.conftest import make_config
from tests.helpers_bundles import new_key, trust_key
from tests.helpers_portal import CSRF_RE, login, set_admin
from tests.helpers_storage import KIB, age, blob_present, bundle, import_ok, play, small_fs

S = 128 * KIB


@pytest.fixture
def node(tmp_path):
    cfg = make_config(tmp_path / "data", store__quota_gb=2 / 1024, store__free_space_floor_mb=0,
                      storage__on_demand=["old"])
    with small_fs(cfg.store_path, 8 * 1024):
        conn = open_main(cfg, check=True)
        store = open_store(cfg)
        sk = new_key(tmp_path)
        trust_key(conn, sk, "old", "new")
        yield cfg, conn, store, sk, tmp_path
        conn.close()


def _evicted_library(cfg, conn, store, sk, tmp):
    """'old' fetched in full once, later on-demand; a quota-driven import evicts old.o0."""
    subscriptions.set_mode(conn, "old", "always")
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 1, {"o0": 4 * S, "o1": 4 * S}))
    subscriptions.clear_override(conn, "old")  # back to the config: on_demand
    age(conn, ["old.o0", "old.o1"], 30)
    play(conn, "old.o1", 1)
    import_ok(cfg, conn, store, bundle(tmp, sk, "new", 1, {"n0": 10 * S}))
    assert not blob_present(store, conn, "old.o0") and blob_present(store, conn, "old.o1")


def _client(cfg):
    from edgenode.node.app import create_app
    app = create_app(cfg)
    app.config["TESTING"] = True
    return app.test_client()


def test_request_goes_upstream_and_the_next_bundle_restores(node):
    cfg, conn, store, sk, tmp = node
    _evicted_library(cfg, conn, store, sk, tmp)
    sha = conn.execute("SELECT sha256 FROM resources WHERE id = 'old.o0'").fetchone()[0]
    client = _client(cfg)

    # Listed and searchable, but no player: a 可预约下载 button instead; the file is not served.
    page = client.get("/r/old.o0")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "可预约下载" in html and 'id="request-download"' in html
    assert f"/media/{sha}" not in html and "/r/old.o0/file/" not in html
    assert client.get(f"/media/{sha}.pdf").status_code == 404
    assert client.get("/r/old.o0/file/资料.pdf").status_code == 404  # nor under its title
    assert "资料 old o0" in client.get("/column/sannong").get_data(as_text=True)

    # The form needs its CSRF token.
    assert client.post("/request/old.o0").status_code == 400
    token = CSRF_RE.search(html).group(1)
    r = client.post("/request/old.o0", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith("/r/old.o0")
    assert "已收到您的预约" in client.get("/r/old.o0").get_data(as_text=True)
    # Asking twice from the same terminal counts once.
    client.post("/request/old.o0", data={"csrf_token": token})
    assert requests.listing(conn)[0]["requests"] == 1
    assert subscriptions.decide(conn, cfg, "old", "old.o0") == "fetch"
    assert subscriptions.decide(conn, cfg, "old", "old.o1") == "metadata"

    # Upstream: the request is in the next sealed, signed usage batch as kind "request" with x.
    from edgenode.core.identity import load_or_create
    from edgenode.node.sync import outbox, uplink
    from edgenode.protocol.usage_batch import read_batch
    sealed = uplink.seal(cfg, conn, load_or_create(cfg))
    assert sealed["sealed_batches"] >= 1
    lines = []
    for _, path in outbox.batch_files(cfg):
        lines += read_batch(path.read_bytes())[1]
    reqs = [e for e in lines if e["k"] == "request"]
    assert len(reqs) == 1 and reqs[0]["r"] == "old.o0" and reqs[0]["x"] == {"resource_id": "old.o0"}

    # The next pull brings a bundle carrying it again: restored, fulfilled, playable.
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 2, {"o0": 4 * S}))
    assert blob_present(store, conn, "old.o0")
    assert not state.is_on_request(conn, conn.execute("SELECT num FROM resources WHERE id = 'old.o0'").fetchone()[0])
    assert state.reconcile(conn) == {"restored": 1, "fulfilled": 1}
    assert requests.listing(conn) == []
    html = client.get("/r/old.o0").get_data(as_text=True)
    # The viewer and the download name the file by its title (/r/<id>/file/<title>.pdf, issue 19).
    assert 'id="request-download"' not in html and "/r/old.o0/file/" in html
    assert client.get(f"/media/{sha}.pdf").status_code == 200
    # Making room for it took o1 (the only evictable file: 'new' is pinned by its channel); the file a
    # villager just got back counts as fresh, so it is not a candidate for the next squeeze.
    assert not blob_present(store, conn, "old.o1")
    assert "old.o0" not in {v.resource_id for v in eviction.candidates(conn, cfg)}


def test_request_refusals_change_nothing(node):
    cfg, conn, store, sk, tmp = node
    _evicted_library(cfg, conn, store, sk, tmp)
    before = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    for rid, code in [("old.o1", "E_NOT_ON_REQUEST"), ("nope", "E_NOT_FOUND"), ("", "E_NOT_FOUND")]:
        with pytest.raises(EdgenodeError) as e:
            requests.request(conn, rid, "t1")
        assert e.value.code == code
    assert conn.execute("SELECT count(*) FROM usage_events").fetchone()[0] == before
    assert conn.execute("SELECT count(*) FROM storage_requests").fetchone()[0] == 0
    client = _client(cfg)
    token = CSRF_RE.search(client.get("/r/old.o0").get_data(as_text=True)).group(1)
    for path in ["/request/nope", "/request/..%2f..%2fetc", "/request/" + "x" * 300]:
        assert client.post(path, data={"csrf_token": token}).status_code == 404
    r = client.post("/request/old.o1", data={"csrf_token": token})  # its file is here: just go and watch
    assert r.status_code == 302 and r.headers["Location"].endswith("/r/old.o1")
    assert 'id="request-download"' not in client.get("/r/old.o1").get_data(as_text=True)
    assert conn.execute("SELECT count(*) FROM storage_requests").fetchone()[0] == 0


@pytest.mark.parametrize("channel, mode, code", [
    ("old", "sometimes", "E_BAD_SUBSCRIPTION"),
    ("Old Channel", "always", "E_BAD_CHANNEL"),
    ("../x", "never", "E_BAD_CHANNEL"),
    ("", "never", "E_BAD_CHANNEL"),
])
def test_bad_subscription_is_refused_and_changes_nothing(cfg, conn, channel, mode, code):
    with pytest.raises(EdgenodeError) as e:
        subscriptions.set_mode(conn, channel, mode)
    assert e.value.code == code
    assert conn.execute("SELECT count(*) FROM storage_subscriptions").fetchone()[0] == 0


def test_subscription_decisions_follow_config_then_admin(cfg, conn):
    cfg = cfg.replace(storage__always=["a"], storage__on_demand=["b"], storage__never=["c"],
                      storage__default_subscription="on_demand")
    assert [subscriptions.decide(conn, cfg, ch) for ch in ("a", "b", "c", "zzz")] == \
        ["fetch", "metadata", "skip", "metadata"]
    subscriptions.set_mode(conn, "c", "always")
    assert subscriptions.decide(conn, cfg, "c") == "fetch"
    subscriptions.clear_override(conn, "c")
    assert subscriptions.decide(conn, cfg, "c") == "skip"


def test_admin_page_shows_quota_requests_and_changes_subscriptions(node):
    cfg, conn, store, sk, tmp = node
    _evicted_library(cfg, conn, store, sk, tmp)
    requests.request(conn, "old.o0", "terminal-1")
    client = _client(cfg)
    assert client.get("/admin/storage/").status_code == 302  # anonymous: to the login
    set_admin(conn)
    login(client)
    html = client.get("/admin/storage/").get_data(as_text=True)
    assert "存储" in html and 'data-resource="old.o0"' in html and "等待下次同步" in html
    assert 'data-channel="old"' in html and 'data-channel="new"' in html
    token = CSRF_RE.search(html).group(1)
    r = client.post("/admin/storage/subscribe", data={"csrf_token": token, "channel": "new", "mode": "on_demand"})
    assert r.status_code == 302
    assert subscriptions.mode(conn, cfg, "new") == "on_demand"
    bad = client.post("/admin/storage/subscribe", data={"csrf_token": token, "channel": "new", "mode": "x"},
                      follow_redirects=True)
    assert "订阅方式不正确" in bad.get_data(as_text=True)
    assert subscriptions.mode(conn, cfg, "new") == "on_demand"
    client.post("/admin/storage/pin", data={"csrf_token": token, "resource_id": "old.o1", "action": "pin"})
    assert conn.execute("SELECT pinned FROM storage_state s JOIN resources r ON r.num = s.resource_num "
                        "WHERE r.id = 'old.o1'").fetchone()[0] == 1
    assert client.post("/admin/storage/subscribe", data={"channel": "new", "mode": "never"}).status_code == 400


def test_storage_cli(node, runner):
    cfg, conn, store, sk, tmp = node
    _evicted_library(cfg, conn, store, sk, tmp)
    env = {"EDGENODE_STORE_QUOTA_GB": str(2 / 1024), "EDGENODE_STORE_FREE_SPACE_FLOOR_MB": "0",
           "EDGENODE_STORAGE_ON_DEMAND": '["old"]'}
    runner = functools.partial(runner, env=env)  # the node's settings, as a config file would give them
    r = runner("storage", "status", "--json")
    data = json.loads(r.output)
    assert data["store"]["on_request"] == 1 and data["store"]["quota_bytes"] == 2 * 1024 ** 2
    r = runner("storage", "subscribe", "new", "on_demand")
    assert r.exit_code == 0 and "new: on_demand" in r.output
    r = runner("storage", "pin", "old.o1")
    assert r.exit_code == 0 and "pinned" in r.output
    r = runner("storage", "evict", "--dry-run", "--bytes", str(20 * S))
    assert r.exit_code == 1 and "E_NO_ROOM" in r.output
    runner("storage", "pin", "old.o1", "--unpin")
    before = {sha for sha, _ in store.iter_blobs()}
    r = runner("storage", "evict", "--dry-run", "--bytes", str(4 * S))  # n0 is fresh: only o1 can go
    assert r.exit_code == 0 and re.search(r"would evict \[lru\] old\.o1 ", r.output), r.output
    assert {sha for sha, _ in store.iter_blobs()} == before  # a dry run changes nothing
    r = runner("storage", "pin", "no-such-thing")
    assert r.exit_code == 1 and "E_NOT_FOUND" in r.output


def test_on_demand_channel_is_listed_without_files_until_requested(node):
    cfg, conn, store, sk, tmp = node
    blobs_before = {sha for sha, _ in store.iter_blobs()}
    r = import_ok(cfg, conn, store, bundle(tmp, sk, "old", 1, {"a": 2 * S, "b": 2 * S}))
    assert r.added == 2 and r.files_copied == 0
    assert {sha for sha, _ in store.iter_blobs()} == blobs_before  # metadata only
    rows = {r_["id"]: r_["visible"] for r_ in conn.execute("SELECT id, visible FROM resources")}
    assert rows == {"old.a": 1, "old.b": 1}  # listed, as 可预约下载
    assert len(state.on_request_nums(conn)) == 2
    client = _client(cfg)
    assert 'id="request-download"' in client.get("/r/old.a").get_data(as_text=True)
    from edgenode.node.catalog.search import search
    assert search(conn, "资料").total == 2

    requests.request(conn, "old.a", "t1")
    # The next pull carries the channel again: only the requested file comes.
    r = import_ok(cfg, conn, store, bundle(tmp, sk, "old", 2, {"a": 2 * S, "b": 2 * S}))
    assert r.files_copied == 1
    assert blob_present(store, conn, "old.a") and not blob_present(store, conn, "old.b")
    assert state.reconcile(conn)["fulfilled"] == 1
    assert 'id="request-download"' not in client.get("/r/old.a").get_data(as_text=True)
    assert 'id="request-download"' in client.get("/r/old.b").get_data(as_text=True)
    # A later metadata update keeps the fetched file (it is already here) and b still waits.
    r = import_ok(cfg, conn, store, bundle(tmp, sk, "old", 3, {"a": 2 * S, "b": 2 * S}))
    assert r.result == "imported" and blob_present(store, conn, "old.a")
    assert state.on_request_nums(conn) == {conn.execute("SELECT num FROM resources WHERE id = 'old.b'").fetchone()[0]}


def test_never_channel_keeps_nothing_even_from_a_stick(node):
    cfg, conn, store, sk, tmp = node
    subscriptions.set_mode(conn, "new", "never")
    blobs_before = {sha for sha, _ in store.iter_blobs()}
    r = import_ok(cfg, conn, store, bundle(tmp, sk, "new", 1, {"x": 2 * S}))
    assert (r.added, r.files_copied) == (0, 0)
    assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
    assert {sha for sha, _ in store.iter_blobs()} == blobs_before
    # The signed sequence still advances: switching to always later takes the next bundle in full.
    subscriptions.set_mode(conn, "new", "always")
    r = import_ok(cfg, conn, store, bundle(tmp, sk, "new", 2, {"x": 2 * S}))
    assert r.added == 1 and blob_present(store, conn, "new.x")


def test_eviction_frees_the_pull_mirror_too_and_the_pull_can_skip_unwanted_files(tmp_path):
    """The content pull hard-links its rsync mirror to store blobs; evicting must drop both names."""
    from edgenode.node.storage import quota
    from edgenode.node.sources.pull import share_with_store, staging_root
    cfg = make_config(tmp_path / "data", store__quota_gb=2 / 1024, store__free_space_floor_mb=0,
                      storage__on_demand=["old"])
    conn = open_main(cfg, check=True)
    store = open_store(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk, "old")
    subscriptions.set_mode(conn, "old", "always")
    built = bundle(tmp_path, sk, "old", 1, {"o0": 4 * S, "o1": 4 * S})
    mirror = staging_root(cfg) / "old"
    mirror.mkdir(parents=True)
    staged = built.rename(mirror / built.name)  # where `edgenode sync pull` leaves it
    import_ok(cfg, conn, store, staged)
    assert share_with_store(store, staged) == 8 * S
    o0 = conn.execute("SELECT sha256 FROM resources WHERE id = 'old.o0'").fetchone()[0]
    assert store.path_for(o0).stat().st_nlink == 2
    subscriptions.clear_override(conn, "old")
    age(conn, ["old.o0", "old.o1"], 30)
    play(conn, "old.o1", 1)
    assert subscriptions.unwanted_paths(conn, cfg, "old", mirror) == []  # both files are here

    p = quota.make_room(conn, store, cfg, 12 * S)
    assert [v.resource_id for v in p.victims] == ["old.o0"]
    assert not store.has(o0) and not (staged / "files" / "o0.pdf").exists()
    assert (staged / "files" / "o1.pdf").stat().st_nlink == 2  # the kept file is untouched
    # The pull should not fetch the evicted file again unless someone asks for it.
    assert subscriptions.unwanted_paths(conn, cfg, "old", mirror) == [f"{staged.name}/files/o0.pdf"]
    requests.request(conn, "old.o0", "t1")
    assert subscriptions.unwanted_paths(conn, cfg, "old", mirror) == []
    conn.close()


def test_pull_from_a_real_rsync_daemon_skips_a_never_channel(tmp_path):
    from edgenode.node.sources import pull
    from tests.helpers_sync import Rsyncd, publish_bundle
    sk = new_key(tmp_path)
    publish_bundle(tmp_path / "pub", tmp_path / "hub" / "rsync" / "channels" / "sannong", sk, "sannong", 1,
                   n=2, size=64 * KIB, seed=1)
    d = Rsyncd(tmp_path / "hub" / "rsync", tmp_path / "rsyncd").start()
    try:
        cfg = make_config(tmp_path / "node", sync__rsync_url=d.url, sync__channels=["sannong"],
                          storage__never=["sannong"])
        conn = open_main(cfg)
        store = open_store(cfg)
        trust_key(conn, sk, "sannong")
        out = pull.pull(cfg, conn, store)
        assert out["wire_bytes"] == 0 and out["imported"] == 0
        assert not (pull.staging_root(cfg) / "sannong").exists()
        assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
        subscriptions.set_mode(conn, "sannong", "always")  # the administrator changes their mind
        out = pull.pull(cfg, conn, store)
        assert out["imported"] == 1
        assert conn.execute("SELECT count(*) FROM resources WHERE visible = 1").fetchone()[0] == 2
        conn.close()
    finally:
        d.stop()


def test_requested_file_comes_back_with_the_next_real_pull(tmp_path):
    """Evict → villager requests → the hub publishes a bundle carrying it → `sync pull` restores it."""
    from edgenode.node.storage import quota
    from edgenode.node.sources import pull
    from tests.helpers_sync import Rsyncd
    sk = new_key(tmp_path)
    hub = tmp_path / "hub" / "rsync" / "channels" / "old"
    hub.mkdir(parents=True)

    def publish(seq, docs):
        b = bundle(tmp_path / "pub", sk, "old", seq, docs)
        return b.rename(hub / b.name)

    publish(1, {"o0": 4 * S, "o1": 4 * S})
    d = Rsyncd(tmp_path / "hub" / "rsync", tmp_path / "rsyncd").start()
    try:
        cfg = make_config(tmp_path / "node", sync__rsync_url=d.url, sync__channels=["old"],
                          store__quota_gb=2 / 1024, store__free_space_floor_mb=0, storage__on_demand=["old"])
        conn = open_main(cfg)
        store = open_store(cfg)
        trust_key(conn, sk, "old")
        subscriptions.set_mode(conn, "old", "always")
        assert pull.pull(cfg, conn, store)["imported"] == 1
        subscriptions.clear_override(conn, "old")
        age(conn, ["old.o0", "old.o1"], 30)
        play(conn, "old.o1", 1)
        quota.evict_now(conn, store, cfg, 12 * S)
        assert not blob_present(store, conn, "old.o0")
        requests.request(conn, "old.o0", "terminal-7")

        publish(2, {"o0": 4 * S})
        out = pull.pull(cfg, conn, store)
        assert out["imported"] == 1, out
        assert blob_present(store, conn, "old.o0")
        assert state.reconcile(conn)["fulfilled"] == 1
        assert requests.listing(conn) == []
        assert store.verify()["bad"] == []
        conn.close()
    finally:
        d.stop()


def _card(html: str, resource_id: str) -> str:
    m = re.search(r'<a class="card" href="/r/' + re.escape(resource_id) + r'">(.*?)</a>', html, re.S)
    assert m, f"no card for {resource_id}"
    return m.group(1)


def test_cards_show_which_files_are_away(node):
    """Villagers see 可预约下载 on the card before opening it: column, search and home grids alike."""
    cfg, conn, store, sk, tmp = node
    _evicted_library(cfg, conn, store, sk, tmp)
    client = _client(cfg)
    for path in ("/column/sannong", "/search?q=old", "/"):
        html = client.get(path).get_data(as_text=True)
        assert "可预约下载" in _card(html, "old.o0"), path
        assert "可预约下载" not in _card(html, "old.o1"), path  # its file is here
    # Requested, the file comes back with the next bundle: the badge goes.
    requests.request(conn, "old.o0", "terminal-1")
    import_ok(cfg, conn, store, bundle(tmp, sk, "old", 2, {"o0": 4 * S}))
    assert blob_present(store, conn, "old.o0")
    state.reconcile(conn)
    assert "可预约下载" not in _card(client.get("/column/sannong").get_data(as_text=True), "old.o0")
