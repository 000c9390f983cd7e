import json

import pytest

from edgenode.node.catalog.search import grams, query_words, search


@pytest.mark.parametrize("query, expected", [
    ("水稻", {"demo-01"}),
    ("养殖", {"demo-02", "demo-03"}),
    ("故事", {"demo-07"}),
    ("sd", {"demo-01"}),
    ("shuidao", {"demo-01"}),
    ("戏曲", {"demo-06"}),
    ("诈骗", {"demo-13"}),
    ("高血压", {"demo-15"}),
    ("水稻 技术", {"demo-01"}),
    ("鱼", {"demo-03"}),
])
def test_demo_queries_find_expected(demo_conn, query, expected):
    ids = {r["id"] for r in search(demo_conn, query).items}
    assert expected <= ids


@pytest.mark.parametrize("query", ["xyzzy", "量子计算机", "qqqq", "&&&", '"', "NEAR(", "*"])
def test_nonsense_and_syntax_find_nothing_without_error(demo_conn, query):
    assert search(demo_conn, query).total == 0


def test_cli_search_for_each_required_query(demo_cfg):
    from click.testing import CliRunner
    from edgenode.cli import cli
    want = {"水稻": "demo-01", "养殖": "demo-02", "故事": "demo-07", "sd": "demo-01"}
    for query, rid in want.items():
        r = CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), "search", query, "--json"])
        assert r.exit_code == 0, r.output
        assert rid in [i["id"] for i in json.loads(r.output)["items"]]
    r = CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), "search", "zzzzzz", "--json"])
    assert json.loads(r.output)["total"] == 0


def test_title_ranks_above_description(demo_conn):
    # 防治 is in demo-03's title and only in demo-05's description.
    ids = [r["id"] for r in search(demo_conn, "防治").items]
    assert ids[0] == "demo-03" and "demo-05" in ids
    assert "demo-01" in [r["id"] for r in search(demo_conn, "插秧").items]  # description-only hit is found


def test_filters_and_paging(demo_conn):
    assert {r["column_key"] for r in search(demo_conn, "养殖", column="sannong").items} == {"sannong"}
    assert search(demo_conn, "养殖", column="shequ").total == 0
    assert {r["kind"] for r in search(demo_conn, "老年", kind="audio").items} == {"audio"}
    assert {r["id"] for r in search(demo_conn, "养殖", tag="养殖").items} == {"demo-02", "demo-03"}
    p1 = search(demo_conn, "养殖", page_size=1, page=1)
    p2 = search(demo_conn, "养殖", page_size=1, page=2)
    assert p1.total == 2 and p1.pages == 2
    assert p1.items[0]["id"] != p2.items[0]["id"]


def test_grams_and_query_words():
    assert grams("水稻种植") == "水 稻 种 植 水稻 稻种 种植"
    assert query_words("水稻栽培 shuidao") == [("水稻",), ("栽培",), ("shuidao",)]
    assert set(query_words("动画")[0]) >= {"动画", "动画片", "卡通"}


def test_hidden_resources_leave_the_index_and_return(demo_conn):
    from edgenode.node.catalog import queries as q
    from edgenode.core.db import transaction
    sha = q.get(demo_conn, "demo-01")["sha256"]
    with transaction(demo_conn):
        q.record_verify(demo_conn, {"checked": 1, "bad": [sha], "missing": []})
    assert "demo-01" not in {r["id"] for r in search(demo_conn, "水稻").items}
    assert search(demo_conn, "shuidao").total == 0
    with transaction(demo_conn):
        q.record_blob(demo_conn, sha, 1)
        q.refresh_visibility(demo_conn)
    assert "demo-01" in {r["id"] for r in search(demo_conn, "水稻").items}


def test_paging_walks_both_tiers_without_gaps_or_repeats(demo_conn):
    # 农 matches titles (三农 items) and descriptions; walk it one item per page.
    whole = search(demo_conn, "农", page_size=100)
    walked = [search(demo_conn, "农", page=p, page_size=1).items[0]["id"] for p in range(1, whole.total + 1)]
    assert walked == [r["id"] for r in whole.items]
    assert len(set(walked)) == whole.total >= 3
    assert search(demo_conn, "农", page=whole.total + 1, page_size=1).items == []
