"""Sections in plain words, the children's corner and the 大字 cookie (issue 19), through Flask's client."""

import re

import pytest

from edgenode.core.config import load_config
from edgenode.core.sections import DEFAULT_SECTIONS
from edgenode.core.errors import ConfigError
from edgenode.node.catalog.search import search
from edgenode.node.portal.sections import episode_key


def test_home_leads_with_the_sections_in_plain_words(client):
    html = client.get("/").get_data(as_text=True)
    tiles = re.findall(r'<a class="tile[^"]*" href="/s/([a-z]+)" data-section="\1">\s*<img src="[^"]+\.svg"', html)
    assert tiles == [s["key"] for s in DEFAULT_SECTIONS]
    for name in ("少儿", "戏曲", "健康", "农业技术", "生活服务", "学习"):
        assert f"<span>{name}</span>" in html
    assert html.index('class="sections"') < html.index('id="newest"')  # first thing under the header
    assert "/column/sannong" in html  # the project's columns stay


def test_a_section_gathers_its_columns_and_tags(client):
    html = client.get("/s/nongye").get_data(as_text=True)
    assert "水稻种植技术要点" in html and "果树冬季修剪手册" in html  # column sannong
    html = client.get("/s/jiankang").get_data(as_text=True)
    assert "高血压" in html and "广场舞" in html and "水稻种植" not in html  # tags 健康, 健身
    assert client.get("/s/nosuch").status_code == 404


def test_the_childrens_corner_is_picture_cards_in_episode_order(client):
    html = client.get("/s/shaoer").get_data(as_text=True)
    cards = re.findall(r'<a class="picture kind-\w+" href="/r/([\w-]+)"[^>]*>\s*<img ', html)
    assert {"demo-07", "demo-08", "demo-16", "demo-17", "demo-18"} <= set(cards)
    assert cards.index("demo-16") < cards.index("demo-17")  # 第1集 before 第2集
    assert "戏曲选段" not in html
    sub = client.get("/s/shaoer?sub=动画").get_data(as_text=True)
    assert re.findall(r'class="picture kind-\w+" href="/r/([\w-]+)"', sub) == ["demo-16", "demo-17"]


def test_episode_order_is_natural():
    titles = ["第10集", "第2集", "第十一集", "第三集", "第1集"]
    assert sorted(titles, key=episode_key) == ["第1集", "第2集", "第三集", "第10集", "第十一集"]


@pytest.mark.parametrize("query, wanted", [("动画", {"demo-16", "demo-17"}), ("儿歌", {"demo-18"}),
                                           ("动画片", {"demo-16", "demo-17"}), ("卡通", {"demo-16", "demo-17"}),
                                           ("童谣", {"demo-18"}), ("戏", {"demo-06"})])
def test_search_finds_the_childrens_items_by_plain_words(demo_conn, query, wanted):
    assert wanted <= {r["id"] for r in search(demo_conn, query).items}


def test_a_county_changes_the_sections_in_config(demo_cfg):
    from edgenode.node.app import create_app
    mine = [{"key": "laoren", "name": "老年之家", "icon": "health", "columns": [], "tags": ["老年"]}]
    app = create_app(demo_cfg.replace(portal__sections=mine))
    html = app.test_client().get("/").get_data(as_text=True)
    assert "老年之家" in html and "/s/shaoer" not in html
    assert "老年人防范电信诈骗" in app.test_client().get("/s/laoren").get_data(as_text=True)


@pytest.mark.parametrize("bad, reason", [
    ([{"key": "a b", "name": "x", "tags": ["t"]}], "key"),
    ([{"key": "a", "name": "", "tags": ["t"]}], "name"),
    ([{"key": "a", "name": "x", "icon": "rocket", "tags": ["t"]}], "icon"),
    ([{"key": "a", "name": "x"}], "at least one"),
    ([{"key": "a", "name": "x", "tags": "t"}], "tags"),
    ([{"key": "a", "name": "x", "tags": ["t"], "colour": "red"}], "unknown"),
    ([{"key": "a", "name": "x", "tags": ["t"]}, {"key": "a", "name": "y", "tags": ["u"]}], "unique"),
    (["少儿"], "table"),
])
def test_bad_sections_are_refused_with_a_reason(bad, reason):
    with pytest.raises(ConfigError, match=reason):
        load_config(env={}, overrides={"portal__sections": bad})


def test_large_type_is_a_cookie_set_by_a_link(client):
    r = client.get("/display/big?next=/s/shaoer")
    assert r.status_code == 303 and r.headers["Location"].endswith("/s/shaoer")
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("display=big;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert '<html lang="zh-CN" class="big">' in client.get("/").get_data(as_text=True)
    client.get("/display/contrast")
    assert 'class="big hc"' in client.get("/r/demo-01").get_data(as_text=True)
    r = client.get("/display/normal?next=//evil.example/")
    assert r.headers["Location"].endswith("/") and "evil" not in r.headers["Location"]
    assert "class=" not in client.get("/").get_data(as_text=True).split(">", 2)[1]
    assert client.get("/display/huge").status_code == 404


def test_a_forged_display_cookie_is_the_normal_display(client):
    client.set_cookie("display", '"><script>')
    html = client.get("/").get_data(as_text=True)
    assert "<script>" not in html.split("</head>")[0] and '<html lang="zh-CN">' in html


def test_pdf_viewer_and_download_use_the_title_and_extension(client):
    from urllib.parse import quote
    html = client.get("/r/demo-04").get_data(as_text=True)
    url = "/r/demo-04/file/" + quote("果树冬季修剪手册.pdf")
    assert f'<iframe class="doc" src="{url}"' in html
    assert f'href="{url}" download="果树冬季修剪手册.pdf"' in html
    r = client.get(url)
    assert r.status_code == 200 and r.data[:5] == b"%PDF-" and r.mimetype == "application/pdf"
    assert r.headers["Content-Disposition"] == ('inline; filename="demo-04.pdf"; '
                                                "filename*=UTF-8''" + quote("果树冬季修剪手册.pdf", safe=""))
    assert client.get("/r/nosuch/file/x.pdf").status_code == 404
    assert client.get("/r/demo-04/file/../../secret_key").status_code == 404 or \
        client.get("/r/demo-04/file/../../secret_key").data[:5] == b"%PDF-"  # the name never finds a file


def test_epub_chapters_follow_large_type(client):
    html = client.get("/r/demo-08/read").get_data(as_text=True)
    chapter = re.search(r'<iframe class="chapter" src="([^"]+)"', html).group(1)
    r = client.get(chapter)
    assert b"<style>html{font-size:20px!important}" in r.data and r.headers["Cache-Control"] == "private, no-cache"
    client.get("/display/big")
    big = client.get(chapter).data
    head = big.index(b"<head")
    assert big.index(b"<style>html{font-size:32px!important}") > head


def test_cached_search_and_section_pages_follow_the_catalogue(client, demo_conn):
    from edgenode.core.db import transaction
    from edgenode.node.catalog import queries as q
    assert "水稻种植技术要点" in client.get("/search?q=水稻").get_data(as_text=True)
    assert "小兔乖乖 第1集" in client.get("/s/shaoer").get_data(as_text=True)
    with transaction(demo_conn):
        q.withdraw(demo_conn, "demo-01")
        q.withdraw(demo_conn, "demo-16")
    assert "水稻种植技术要点" not in client.get("/search?q=水稻").get_data(as_text=True)
    assert "小兔乖乖 第1集" not in client.get("/s/shaoer").get_data(as_text=True)


@pytest.mark.parametrize("doc, want", [
    (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body/></html>',
     b'<head><style>'),
    (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>x</body></html>',
     b'<html xmlns="http://www.w3.org/1999/xhtml"><head><style>'),
    (b'<?xml version="1.0"?><p>no html</p>', None),
])
def test_reader_style_keeps_the_chapter_well_formed(doc, want):
    from xml.dom.minidom import parseString
    from edgenode.node.portal.sections import reader_style
    out = reader_style(doc, "big")
    if want is None:
        assert out == doc
    else:
        assert want in out and out.startswith(b"<?xml")
        parseString(out)  # still well-formed XML
