"""Issue 20's follow-up: the live-broadcast duty in the annual-assessment report (page, CSV, .xlsx, PDF),
for a month (one point met, one not) and for a year (months met out of the months due).  The figures
expected are worked out here from the events the nodes send, not from the hub's code."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from edgenode.hub import live, reports, reports_write
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from edgenode.protocol.usage_batch import seal_bytes, sign_batch
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, csrf_from, login

CST = timezone(timedelta(hours=8))
NUM = ' class="num"'
BROADCASTS = {"lecture-11": ("冬季果树管理公开课", datetime(2025, 11, 20, 19, 30, tzinfo=CST)),
              "lecture-12": ("防诈骗讲座", datetime(2025, 12, 18, 19, 30, tzinfo=CST))}
TITLES = {f"shequ.{b}": t for b, (t, _) in BROADCASTS.items()}
# point -> [(month, broadcast key, terminal, seconds)], one entry per player beacon (30 s at most each);
# 西村 shows nothing in November and, in December, the county's broadcast and one the county never
# scheduled (a province's): it counts, named by its key.
LIVE = {
    "东村服务点": [(11, "shequ.lecture-11", "a", 30.0)] * 100 + [(11, "shequ.lecture-11", "b", 25.0)] * 40
    + [(11, "shequ.lecture-11", "b", 12.0), (12, "shequ.lecture-12", "c", 24.5)] + [(12, "shequ.lecture-12", "a", 30.0)] * 60,
    "西村服务点": [(12, "shequ.gala", "d", 30.0)] * 45 + [(12, "shequ.gala", "d", 18.0)]
    + [(12, "shequ.lecture-12", "e", 30.0)] * 20,
}
POINTS = (("东村服务点", "河口镇"), ("西村服务点", "山前镇"))


def _enrol(client, name: str, township: str) -> FlaskNode:
    token = csrf_from(client.get("/enrol").get_data(as_text=True))
    html = client.post("/enrol", data={"township": township, "csrf_token": token}).get_data(as_text=True)
    code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", html).group(0)
    node = FlaskNode(client.application.test_client())
    assert node.enroll(code, name=name, township=township).status_code == 200
    return node


def _send(node: FlaskNode, batch_no: int, first_seq: int, events: list[tuple]) -> int:
    """``events``: (time, kind, terminal, resource, seconds); returns the next sequence number."""
    lines = [{"s": first_seq + i, "t": t.timestamp(), "k": k, "m": f"tid-{m}", "r": r, "c": None, "d": d, "x": None}
             for i, (t, k, m, r, d) in enumerate(events)]
    data = seal_bytes(node.node_id, batch_no, lines, first_seq=first_seq, last_seq=first_seq + len(lines) - 1)
    assert node.upload(batch_no, data, sign_batch(node.ident, batch_no, data)).status_code == 200
    return first_seq + len(lines)


def _hub(tmp_path_factory, name: str):
    cfg = make_config(tmp_path_factory.mktemp(name) / "hub", hub__name="清河县文化馆")
    conn = open_hub(cfg)
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    return cfg, conn, login(app.test_client(), conn)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    cfg, conn, client = _hub(tmp_path_factory, "reports-live")
    for bid, (title, start) in BROADCASTS.items():
        live.add(cfg, "shequ", {"id": bid, "title": title, "description": "", "start": start.isoformat(),
                                "end": (start + timedelta(hours=1)).isoformat(),
                                "stream_url": f"http://hub.example/live/{bid}/index.m3u8"})
    for name, township in POINTS:
        node = _enrol(client, name, township)
        seq = 1
        for no, month in enumerate((11, 12), 1):
            base = datetime(2025, month, 20, 20, 0, tzinfo=CST)
            events = [(base, "view", "a", None, 0.0), (base, "view", "b", None, 0.0)]  # every point has visitors
            events += [(base + timedelta(seconds=30 * i), "live_view", m, key, secs)
                       for i, (mo, key, m, secs) in enumerate(LIVE[name]) if mo == month]
            seq = _send(node, no, seq, events)
    yield cfg, conn, client
    conn.close()


def _expected(period: str, due: int = 12) -> dict[str, list[tuple]]:
    """The two live sections' rows from LIVE, as the report promises to show them."""
    months = [int(period[5:])] if len(period) == 7 else list(range(1, 13))
    duty, views = [], []
    for name, township in sorted(POINTS, key=lambda p: (p[1], p[0])):  # by township, then name
        mine = [e for e in LIVE[name] if e[0] in months]
        hours = round(sum(e[3] for e in mine) / 3600, 2)
        shown = {e[1] for e in mine}
        if len(period) == 7:
            duty.append((name, township, len(shown), hours, "是" if shown else "否"))
        else:
            met = {e[0] for e in mine if e[0] <= due}
            missed = [m for m in range(1, due + 1) if m not in met]
            duty.append((name, township, len(met), due, len(shown), hours, live.months_text(missed)))
        for key in sorted(shown):
            rows = [e for e in mine if e[1] == key]
            views.append((name, township, TITLES.get(key, key), len(rows), round(sum(e[3] for e in rows) / 60, 1)))
    if len(period) == 7:
        return {"live_duty": duty, "live_views": views}
    # A year: one row per broadcast, in the order they were broadcast, over every point.
    every = sorted(((e[0], e[1], name, e[3]) for name in LIVE for e in LIVE[name]))
    keys = list(dict.fromkeys(k for _, k, _, _ in every))
    return {"live_duty": duty, "live_broadcasts": [
        (TITLES.get(k, k), len({p for _, kk, p, _ in every if kk == k}), sum(1 for e in every if e[1] == k),
         round(sum(e[3] for e in every if e[1] == k) / 3600, 2)) for k in keys]}


def _pdf_lines(data: bytes, tmp_path) -> list[str]:
    assert data.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    return [re.sub(r"\s+", " ", ln).strip() for ln in text.splitlines()]


def _csv_blocks(text: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """The CSV's live blocks by section title: after a blank line, ``分类, headers...``, then ``title, cells...``."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["分类", "名称", "所属", "服务人次", "播放次数", "观看时长（小时）", "终端数"]
    out: dict[str, tuple[list[str], list[tuple]]] = {}
    for i in [i for i, row in enumerate(rows) if row == []]:
        assert rows[i + 1][0] == "分类"
        body = [r for r in rows[i + 2:]][:next((k for k, r in enumerate(rows[i + 2:]) if r == []), None)]
        assert len({r[0] for r in body}) == 1
        out[body[0][0]] = (rows[i + 1][1:], [tuple(r[1:]) for r in body])
    return out


def _as_text(rows: list[tuple]) -> list[tuple]:
    return [tuple(str(c) for c in r) for r in rows]


@pytest.mark.parametrize("period", ["2025-11", "2025"])
def test_live_sections_in_page_csv_xlsx_and_pdf(seeded, period, tmp_path):
    cfg, conn, client = seeded
    want = _expected(period)
    if period == "2025-11":  # the case the issue names: one point met, one not
        assert {r[0]: r[-1] for r in want["live_duty"]} == {"东村服务点": "是", "西村服务点": "否"}
    else:
        assert {r[0]: r[2] for r in want["live_duty"]} == {"东村服务点": 2, "西村服务点": 1}
    r = reports.build(conn, period, county="清河县文化馆", live_titles=live.titles(cfg))
    got = {s["key"]: [tuple(row) for row in s["rows"]] for s in r["sections"]}
    assert [s["key"] for s in r["sections"]][-2:] == list(want)
    assert {k: got[k] for k in want} == want
    titles = {s["key"]: s["title"] for s in r["sections"]}
    headers = {s["key"]: s["headers"] for s in r["sections"]}

    page = client.get(f"/stats/report/{period}").get_data(as_text=True).replace("\n", "")
    for key, rows in want.items():
        assert f'id="report-{key}"' in page
        for row in rows:
            cells = "".join(f'<td{NUM if isinstance(c, (int, float)) else ""}>{c}</td>' for c in row)
            assert cells in page, cells

    text = client.get(f"/stats/report/{period}/csv").get_data(as_text=True)
    blocks = _csv_blocks(text)
    assert blocks == {titles[k]: (headers[k], _as_text(rows)) for k, rows in want.items()}

    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(client.get(f"/stats/report/{period}/xlsx").data))
    assert wb.sheetnames == ["合计", "按乡镇", "按服务点", "按栏目", "按资源", *(titles[k] for k in want)]
    for key, rows in want.items():
        ws = wb[titles[key]]
        assert [c.value for c in ws[2]] == headers[key]
        assert [tuple(c.value for c in row) for row in ws.iter_rows(min_row=3)] == rows
    hours_col = headers["live_duty"].index("收看时长（小时）") + 1
    assert wb[titles["live_duty"]].cell(3, hours_col).number_format == "#,##0.00"
    assert wb[titles["live_duty"]].cell(3, len(headers["live_duty"])).number_format == "@"
    second = list(want)[1]
    assert wb[titles[second]].cell(3, len(headers[second])).number_format == (
        "#,##0.0" if second == "live_views" else "#,##0.00")  # minutes per point, hours per broadcast

    lines = _pdf_lines(client.get(f"/stats/report/{period}/pdf").data, tmp_path)
    assert all(titles[k] in lines for k in want)
    for rows in want.values():
        for row in rows:
            assert " ".join(str(c) for c in row) in lines, row


def test_a_year_in_progress_counts_the_months_begun(seeded):
    cfg, conn, _ = seeded
    mid_nov = datetime(2025, 11, 15, 12, tzinfo=CST).timestamp()
    assert reports.months_due("2025", 8.0, mid_nov) == 11
    assert reports.months_due("2024", 8.0, mid_nov) == 12 and reports.months_due("2026", 8.0, mid_nov) == 0
    r = reports.build(conn, "2025", county="清河县文化馆", now=mid_nov, live_titles=live.titles(cfg))
    duty = next(s for s in r["sections"] if s["key"] == "live_duty")
    assert [tuple(row) for row in duty["rows"]] == _expected("2025", due=11)["live_duty"]
    assert {row[0]: row[-1] for row in duty["rows"]} == {"东村服务点": "1-10月", "西村服务点": "1-11月"}


def test_the_cli_report_carries_the_live_sections(seeded, tmp_path):
    cfg, _, _ = seeded
    from click.testing import CliRunner
    from edgenode.cli import cli
    out = tmp_path / "nov.csv"
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "report", "2025-11", "--format", "csv",
                                 "-o", str(out)], env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 0, r.output
    assert _csv_blocks(out.read_bytes().decode("utf-8"))["直播收看（每月至少一次）"][1] == _as_text(
        _expected("2025-11")["live_duty"])


def test_a_hub_without_live_broadcasts_gets_the_report_without_live_sections(tmp_path_factory, tmp_path):
    cfg, conn, client = _hub(tmp_path_factory, "reports-nolive")
    node = _enrol(client, "北村服务点", "河口镇")
    _send(node, 1, 1, [(datetime(2025, 11, 3, 9, tzinfo=CST), "view", "a", None, 0.0)])
    try:
        r = reports.build(conn, "2025-11", county="清河县文化馆", live_titles=live.titles(cfg))
        assert [s["key"] for s in r["sections"]] == ["township", "node", "column", "resource"]
        text = client.get("/stats/report/2025-11/csv").get_data(as_text=True)
        assert [] not in list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
        from openpyxl import load_workbook
        wb = load_workbook(io.BytesIO(client.get("/stats/report/2025-11/xlsx").data))
        assert wb.sheetnames == ["合计", "按乡镇", "按服务点", "按栏目", "按资源"]
        assert "直播收看" not in client.get("/stats/report/2025-11").get_data(as_text=True)
        assert "直播收看" not in reports_write.to_html(r)

        # Once the county schedules a broadcast the duty is shown, even for a month nobody watched one.
        start = datetime(2025, 11, 20, 19, 30, tzinfo=CST)
        live.add(cfg, "shequ", {"id": "first", "title": "第一次直播", "description": "", "start": start.isoformat(),
                                "end": (start + timedelta(hours=1)).isoformat(),
                                "stream_url": "http://hub.example/live/first/index.m3u8"})
        page = client.get("/stats/report/2025-11").get_data(as_text=True).replace("\n", "")
        assert f"<td>北村服务点</td><td>河口镇</td><td{NUM}>0</td><td{NUM}>0.0</td><td>否</td>" in page
        assert re.search(r'id="report-live_views">.*?本期没有数据', page)
    finally:
        conn.close()


def test_the_resource_tables_name_a_scheduled_broadcast_not_title_unknown(seeded):
    """Live viewing counts in 按资源 too: a broadcast the county scheduled is named there as 直播：<title>;
    one it never scheduled (a province's) keeps its key."""
    cfg, conn, _client = seeded
    report = reports.build(conn, "2025", county="清河县", live_titles=live.titles(cfg))
    titles = {row[0] for s in report["sections"] if s["key"] == "resource" for row in s["rows"]}
    assert {"直播：冬季果树管理公开课", "直播：防诈骗讲座"} <= titles
    assert not any("shequ.lecture" in t for t in titles)
    assert "标题未知（shequ.gala）" in titles


@pytest.mark.parametrize("period, code", [("2025", 0), ("2025-12", 0), ("2025-13", 1), ("../x", 1), ("", 1)])
def test_hub_live_report_takes_a_month_or_a_year_and_refuses_the_rest(seeded, period, code):
    cfg, _, _ = seeded
    from click.testing import CliRunner
    from edgenode.cli import cli
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "live", "report", "--month", period, "--json"],
                           env={"EDGENODE_CONFIG": ""})
    if code:
        assert r.exit_code != 0 and "E_REPORT_PERIOD" in r.output
    else:
        import json
        assert r.exit_code == 0, r.output
        keys = [s["key"] for s in json.loads(r.output)]
        assert keys == (["live_duty", "live_broadcasts"] if len(period) == 4 else ["live_duty", "live_views"])
