"""Series (系列/专辑) in the bundle format, the catalogue and the portal (issue 19)."""

from __future__ import annotations

import json
import re

import pytest

from edgenode.node.catalog import series_queries as sq
from edgenode.node.catalog.search import search
from edgenode.node.imports.pipeline import import_bundle
from edgenode.protocol.bundle import BundleError, parse_manifest
from tests.helpers_bundles import make_bundle, new_key, rewrite_manifest, snapshot, trust_key
from tests.helpers_series import series_bundle

# A format-1 manifest as nodes have always read it (no series, no subtitles), byte for byte.
OLD_MANIFEST = ('{"format": 1, "channel": "sannong", "seq": 7, "created": "2026-01-01T00:00:00Z", "expires": null, '
                '"key_id": "0123456789ABCDEF", "resources": [{"id": "doc000", "path": "files/doc000.pdf", "size": 10, '
                '"sha256": "' + "a" * 64 + '", "title": "农技资料", "description": "", "column": "sannong", '
                '"tags": ["水稻"], "kind": "pdf", "language": "zh"}], "withdraw": []}').encode()


def test_an_old_manifest_parses_as_before():
    m = parse_manifest(OLD_MANIFEST)
    assert m.series == [] and m.entries[0].series is None and m.entries[0].subtitles == ()
    assert m.entries[0].meta["title"] == "农技资料"


def test_an_old_format_bundle_imports_as_before(cfg, conn, store, tmp_path):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    bundle = make_bundle(tmp_path, sk)
    doc = json.loads((bundle / "manifest.json").read_text())
    assert "series" not in doc and all("subtitles" not in e and "series" not in e for e in doc["resources"])
    assert import_bundle(cfg, conn, store, bundle, source="t").result == "imported"
    rows = conn.execute("SELECT id, visible, series_num, episode FROM resources ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(f"sannong.doc{i:03d}", 1, None, None) for i in range(3)]
    assert sq.browse_grouped(conn).total == 3


@pytest.fixture
def series_conn(cfg, conn, store, tmp_path):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "pushi")
    r = import_bundle(cfg, conn, store, series_bundle(tmp_path, sk), source="t")
    assert r.result == "imported" and r.added == 16, r.error
    return conn


def test_a_series_imports_in_episode_order(series_conn):
    s = sq.get_series(series_conn, "pushi.opera")
    assert s["title"] == "豫剧经典系列"
    eps = sq.episodes(series_conn, s["num"])
    assert [e["episode"] for e in eps] == list(range(1, 17))
    prev, nxt = sq.neighbours(series_conn, eps[2])
    assert prev["episode"] == 2 and nxt["episode"] == 4
    assert sq.neighbours(series_conn, eps[-1])[1] is None


def test_listings_show_a_series_once(series_conn):
    result = sq.browse_grouped(series_conn, page_size=8)
    assert result.total == 1 and len(result.items) == 1
    assert result.items[0]["series"]["latest"] == 16 and result.items[0]["series"]["episodes"] == 16


def test_search_finds_the_series_and_its_episodes(series_conn):
    assert [r["series"]["id"] for r in sq.find_series(series_conn, "豫剧")] == ["pushi.opera"]
    hits = search(series_conn, "豫剧经典", page_size=20)
    assert hits.total == 16
    assert search(series_conn, "第3集").total >= 1


def test_the_portal_pages(series_conn, cfg):
    from edgenode.node.app import create_app
    client = create_app(cfg).test_client()
    home = client.get("/").get_data(as_text=True)
    newest = home.split('id="newest"')[1].split("</section>")[0]
    assert newest.count("豫剧经典系列") == 1 and "新增 16 集" in newest and "/series/pushi.opera" in newest
    page = client.get("/series/pushi.opera").get_data(as_text=True)
    assert re.findall(r'<span class="ep">第(\d+)集</span>', page) == [str(i) for i in range(1, 17)]
    ep3 = client.get("/r/pushi.opera-03").get_data(as_text=True)
    assert "下一集：第4集" in ep3 and "/r/pushi.opera-04" in ep3 and "上一集" in ep3
    assert "豫剧经典系列" in client.get("/search?q=豫剧").get_data(as_text=True)
    assert client.get("/series/pushi.nothing").status_code == 404


@pytest.mark.parametrize("edit, code", [
    (lambda d: d["resources"][0].update(series="nope"), "E_MANIFEST_INVALID"),          # undeclared series
    (lambda d: d["resources"][0].update(episode=0), "E_MANIFEST_INVALID"),              # episode 0
    (lambda d: d["resources"][0].update(episode="3"), "E_MANIFEST_INVALID"),            # not a number
    (lambda d: d["resources"][0].pop("series"), "E_MANIFEST_INVALID"),                  # episode without series
    (lambda d: d["resources"][0].update(episode=d["resources"][1]["episode"]), "E_DUPLICATE_ENTRY"),
    (lambda d: d["series"].append(dict(d["series"][0])), "E_DUPLICATE_ENTRY"),
    (lambda d: d["series"][0].update(title=""), "E_METADATA"),
    (lambda d: d["series"][0].update(column="火星"), "E_METADATA"),
    (lambda d: d["series"][0].update(extra=1), "E_METADATA"),
    (lambda d: d.update(series={"id": "x"}), "E_MANIFEST_INVALID"),
])
def test_hostile_series_manifests_change_nothing(cfg, conn, store, tmp_path, edit, code):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "pushi")
    bundle = series_bundle(tmp_path, sk, n=3)
    rewrite_manifest(bundle, sk, edit)
    before = snapshot(conn, store)
    r = import_bundle(cfg, conn, store, bundle, source="t")
    assert r.result == "failed" and r.error_code == code, (r.error_code, r.error)
    assert snapshot(conn, store) == before


def test_a_series_id_of_another_channel_is_refused(cfg, conn, store, tmp_path):
    sk = new_key(tmp_path)
    trust_key(conn, sk, "pushi", "sannong")
    assert import_bundle(cfg, conn, store, series_bundle(tmp_path / "a", sk, n=2), source="t").result == "imported"
    with pytest.raises(BundleError):
        parse_manifest(b"{}")  # sanity: the parser is the one refusing malformed documents
    bundle = series_bundle(tmp_path / "b", sk, channel="sannong", n=2)
    rewrite_manifest(bundle, sk, lambda d: [e.update(id="x" + e["id"]) for e in d["resources"]])
    # Same short series id, another channel: a separate series (ids are per channel), not a clash.
    assert import_bundle(cfg, conn, store, bundle, source="t").result == "imported"
    assert sq.get_series(conn, "sannong.opera") and sq.get_series(conn, "pushi.opera")


def test_popular_shows_a_series_once(series_conn, cfg):
    from edgenode.node.app import create_app
    from edgenode.node.usage.events import record
    record(series_conn, [{"kind": "play_start", "terminal": "t", "resource_id": f"pushi.opera-{i:02d}"}
                         for i in (1, 2, 3, 3)])
    home = create_app(cfg).test_client().get("/").get_data(as_text=True)
    popular = home.split('id="popular"')[1].split("</section>")[0]
    assert popular.count("豫剧经典系列") == 1 and "/series/pushi.opera" in popular
