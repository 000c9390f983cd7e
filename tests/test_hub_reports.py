"""Issue 18: the reports for the annual assessment (page, CSV, .xlsx, PDF) equal SQL over the
ingest tables, name resources by title, and have no blank rows."""

from __future__ import annotations

import csv
import io
import random
import re
import subprocess

import pytest

from edgenode.hub import reports, stats
from edgenode.hub.app import create_hub_app
from edgenode.hub.database import open_hub
from edgenode.protocol.metadata import COLUMNS
from edgenode.protocol.usage_batch import seal_bytes, sign_batch
from tests.conftest import make_config
from tests.helpers_hub import FlaskNode, csrf_from, login

NOV, DEC = 1793462400.0, 1796054400.0  # 2026-11-01 and 2026-12-01, 00:00 UTC+8
TITLES = {"res-sannong-0": "果树冬季修剪", "res-sannong-1": "生猪防疫要点", "res-pushi-0": "老年人防诈骗",
          "res-shequ-0": "社区垃圾分类", "res-xinchengshi-0": "进城务工维权"}
NUM = ' class="num"'
NODES = (("东村服务点", "河口镇"), ("西村服务点", "河口镇"), ("南村服务点", "山前镇"))


def _events(seed: int, start: float, n: int, first_seq: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        pick = rnd.random()
        if pick < 0.25:  # the home page or an activity page: no column, no resource
            c, r, k = None, None, "view"
        elif pick < 0.35:  # a column's list page
            c, r, k = rnd.choice(list(COLUMNS)), None, "view"
        else:
            r = rnd.choice([*TITLES, "res-pushi-9"])  # res-pushi-9: a title the hub never heard of
            c, k = r.split("-")[1], rnd.choice(["view", "play_start", "progress", "play_end"])
        out.append({"s": first_seq + i, "t": start + i * 611.0, "k": k, "m": f"tid-{seed}-{rnd.randrange(6)}",
                    "r": r, "c": c, "d": 30.0 if k in ("progress", "play_end") else 0.0, "x": None})
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("reports") / "hub", hub__name="清河县文化馆")
    conn = open_hub(cfg)
    app = create_hub_app(cfg)
    app.config["TESTING"] = True
    client = login(app.test_client(), conn)
    for i, (name, township) in enumerate(NODES):
        token = csrf_from(client.get("/enrol").get_data(as_text=True))
        html = client.post("/enrol", data={"township": township, "csrf_token": token}).get_data(as_text=True)
        code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", html).group(0)
        node = FlaskNode(app.test_client())
        assert node.enroll(code, name=name, township=township).status_code == 200
        seq = 1
        for no, start in enumerate((NOV + i * 3600, DEC + i * 3600), 1):
            evs = _events(i * 10 + no, start, 300, seq)
            seq += len(evs)
            named = {e["r"]: TITLES[e["r"]] for e in evs if e["r"] in TITLES}
            data = seal_bytes(node.node_id, no, evs, first_seq=evs[0]["s"], last_seq=evs[-1]["s"], titles=named)
            assert node.upload(no, data, sign_batch(node.ident, no, data)).status_code == 200
    yield cfg, conn, client
    conn.close()


def _truth(conn, period: str) -> dict[str, set[tuple]]:
    """Each breakdown straight from the ingest tables, labelled as the report promises."""
    like = period + "%"
    figures = ("sum(CASE WHEN m.kind = 'view' THEN m.n ELSE 0 END), "
               "sum(CASE WHEN m.kind = 'play_start' THEN m.n ELSE 0 END), round(sum(m.seconds) / 3600.0, 2)")

    def grouped(key_sql: str, where: str = "") -> dict:
        figs = {tuple(r[:-3]): tuple(r[-3:]) for r in conn.execute(
            f"SELECT {key_sql}, {figures} FROM hub_monthly m JOIN hub_nodes n ON n.node_id = m.node_id "
            f"WHERE m.month LIKE ? {where} GROUP BY {key_sql}", (like,))}
        terms = {tuple(r[:-1]): r[-1] for r in conn.execute(
            f"SELECT {key_sql.replace('m.', 't.')}, count(DISTINCT t.node_id || ':' || t.terminal) FROM hub_terminals t "
            f"JOIN hub_nodes n ON n.node_id = t.node_id WHERE t.month LIKE ? "
            f"{where.replace('m.', 't.')} GROUP BY {key_sql.replace('m.', 't.')}", (like,))}
        return {k: (*v, terms[k]) for k, v in figs.items()}

    titles = dict(conn.execute("SELECT resource_id, title FROM hub_titles"))
    col = lambda k: COLUMNS.get(k) or stats.NO_COLUMN  # noqa: E731
    return {
        "township": {(k[0], *v) for k, v in grouped("n.township").items()},
        "node": {(k[0], k[1], *v) for k, v in grouped("n.name, n.township").items()},
        "column": {(col(k[0]), *v) for k, v in grouped("m.column_key").items()},
        "resource": {(titles.get(k[0], f"标题未知（{k[0]}）"), col(k[1]), *v)
                     for k, v in grouped("m.resource_id, m.column_key", "AND m.resource_id <> ''").items()},
    }


def _xlsx_rows(data: bytes) -> dict[str, set[tuple]]:
    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["合计", "按乡镇", "按服务点", "按栏目", "按资源"]
    out = {}
    for key, title, _, _ in reports.BREAKDOWNS:
        ws = wb[title]
        assert ws.cell(2, ws.max_column).value == "终端数"
        assert ws.cell(3, ws.max_column - 1).number_format == "#,##0.00"  # watch hours
        out[key] = {tuple(c.value for c in row) for row in ws.iter_rows(min_row=3)}
    return out


def _csv_rows(text: str) -> dict[str, set[tuple]]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    out: dict[str, set[tuple]] = {k: set() for k, *_ in reports.BREAKDOWNS}
    keys = {title: (key, labels) for key, title, _, labels in reports.BREAKDOWNS}
    for row in rows[2:]:
        key, labels = keys[row[0]]
        names = row[1:1 + len(labels)]
        out[key].add((*names, int(row[3]), int(row[4]), float(row[5]), int(row[6])))
    return out


@pytest.mark.parametrize("period", ["2026-11", "2026"])
def test_exports_and_page_equal_sql_over_the_ingest_tables(seeded, period, tmp_path):
    cfg, conn, client = seeded
    truth = _truth(conn, period)
    assert all(truth.values()) and any("标题未知" in r[0] for r in truth["resource"])
    for rows in truth.values():  # no blank cells anywhere, titles instead of ids
        assert all(str(c).strip() for r in rows for c in r)
    assert {r[0] for r in truth["resource"]} >= set(TITLES.values())

    xlsx = client.get(f"/stats/report/{period}/xlsx")
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.mimetype
    assert _xlsx_rows(xlsx.data) == truth

    text = client.get(f"/stats/report/{period}/csv").get_data(as_text=True)
    assert _csv_rows(text) == truth

    pdf = client.get(f"/stats/report/{period}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(pdf.data)
    layout = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                            check=True).stdout
    lines = [re.sub(r"\s+", " ", ln).strip() for ln in layout.splitlines()]
    assert "清河县文化馆" in layout and reports.period_zh(period) in layout
    for key, rows in truth.items():
        for row in rows:
            want = " ".join(str(c) for c in row)
            assert want in lines, (key, want)

    page = client.get(f"/stats/report/{period}").get_data(as_text=True)
    for rows in truth.values():
        for row in rows:
            cells = "".join(f'<td{NUM if isinstance(c, (int, float)) else ""}>{c}</td>' for c in row)
            assert cells in page.replace("\n", ""), cells
    totals = conn.execute("SELECT sum(n) FROM hub_monthly WHERE kind = 'view' AND month LIKE ?",
                          (period + "%",)).fetchone()[0]
    assert f'id="total-visits">{totals}<' in page
    assert "（UTC+8）" in page


def test_made_at_is_in_the_statistics_time_zone():
    assert reports.made_at(8.0, now=NOV + 60) == "2026-11-01 00:01（UTC+8）"


@pytest.mark.parametrize("period", ["2026-13", "26", "2026-1", "../etc", "2026-11-01", "２０２６", "2026-00"])
def test_bad_periods_are_refused(seeded, period):
    _, _, client = seeded
    r = client.get(f"/stats/report/{period}/xlsx")
    assert r.status_code == 404
    if period and "/" not in period:  # the others never reach the route
        assert "报表期间应为" in r.get_data(as_text=True)


def test_the_statistics_csv_has_no_blank_cells(seeded):
    _, conn, client = seeded
    for group in ("township", "node", "column", "resource"):
        text = client.get(f"/stats/export.csv?group={group}&year=2026").get_data(as_text=True)
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[2:]
        assert rows and all(all(c.strip() for c in r) for r in rows), (group, rows[:3])


def test_cli_writes_the_same_report(seeded, tmp_path):
    cfg, conn, client = seeded
    from click.testing import CliRunner
    from edgenode.cli import cli
    out = tmp_path / "year.xlsx"
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "report", "2026", "-o", str(out)],
                           env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 0, r.output
    assert _xlsx_rows(out.read_bytes()) == _truth(conn, "2026")
    r = CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), "hub", "report", "2026-13"],
                           env={"EDGENODE_CONFIG": ""})
    assert r.exit_code == 1 and "E_REPORT_PERIOD" in r.output
