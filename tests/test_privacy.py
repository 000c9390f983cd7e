"""Personal data stays put: phone numbers and names leave the database file after the retention
period (checked in the file bytes after VACUUM), and never appear in an upstream batch."""

from __future__ import annotations

import gzip
import time

from edgenode.node.activities import privacy
from edgenode.node.activities import queries as aq
from edgenode.core.db import open_main
from edgenode.node.feedback import queries as fq
from edgenode.node.sync import outbox, uplink
from tests.conftest import make_config
from tests.helpers_activities import PHONES, activity, campaign

NAMES = ["陈忠孝", "欧阳春花", "司马建国"]


def _file_bytes(cfg) -> bytes:
    data = cfg.db_path.read_bytes()
    wal = cfg.db_path.with_name(cfg.db_path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def _book_some(conn, cfg, a, n=12):
    made = []
    for i in range(n):
        made.append(aq.book(conn, cfg, a["id"], {"name": NAMES[i % 3], "phone": PHONES[i], "seats": 1},
                            terminal=f"term{i}"))
    return made


def test_phone_numbers_gone_from_file_bytes_after_retention(cfg, conn):
    a = activity(conn, capacity=50)
    keep = activity(conn, capacity=50, title="下个月的活动", start=time.time() + 60 * 86400)
    made = _book_some(conn, cfg, a)
    aq.check_in(conn, cfg, made[0]["code"])
    kept = aq.book(conn, cfg, keep["id"], {"name": "王守仁", "phone": PHONES[99], "seats": 1}, terminal="k")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _file_bytes(cfg)
    assert all(p.encode() in before for p in PHONES[:12])  # the scan below can see them
    retention = cfg["activities.retention_days"]

    # Not yet due: nothing changes.
    assert privacy.purge(cfg, conn, now=a["end_at"] + (retention - 1) * 86400)["bookings"] == 0
    assert conn.execute("SELECT count(*) FROM act_bookings WHERE phone != ''").fetchone()[0] == 13

    r = privacy.purge(cfg, conn, now=a["end_at"] + retention * 86400 + 60)
    assert r == {"activities": 1, "bookings": 12, "vacuumed": True}
    rows = conn.execute("SELECT name, phone, terminal, status, seats FROM act_bookings WHERE activity_id = ?",
                        (a["id"],)).fetchall()
    assert {(x["name"], x["phone"], x["terminal"]) for x in rows} == {("", "", None)}
    assert sum(x["seats"] for x in rows) == 12 and "checked_in" in {x["status"] for x in rows}  # counts stay
    data = _file_bytes(cfg)
    leaked = [p for p in PHONES[:12] if p.encode() in data]
    leaked += [n for n in NAMES if n.encode() in data]
    assert not leaked, f"still in the file bytes: {leaked}"
    # The other activity's booking is untouched, and listings say 已删除 for purged ones.
    assert PHONES[99].encode() in data
    assert aq.get_booking(conn, kept["order_id"], full_contact=True)["phone"] == PHONES[99]
    assert aq.get_booking(conn, made[1]["order_id"])["phone"] == "已删除"
    # Running again is harmless.
    assert privacy.purge(cfg, conn, now=a["end_at"] + retention * 86400 + 60)["bookings"] == 0


def test_cli_purge(cfg, conn, runner):
    a = activity(conn, capacity=5, start=time.time() + 60, end=time.time() + 120)
    aq.book(conn, cfg, a["id"], {"name": "陈忠", "phone": PHONES[5], "seats": 1}, terminal="t")
    r = runner("privacy", "purge", "--json")
    assert r.exit_code == 0 and '"bookings": 0' in r.output  # retention not over yet


def test_zero_retention_purges_right_after_the_activity(tmp_path):
    cfg = make_config(tmp_path / "d", activities__retention_days=0)
    conn = open_main(cfg)
    a = activity(conn, capacity=5, start=time.time() + 60, end=time.time() + 120)
    aq.book(conn, cfg, a["id"], {"name": "陈忠", "phone": PHONES[6], "seats": 1}, terminal="t")
    assert privacy.purge(cfg, conn)["bookings"] == 0
    assert privacy.purge(cfg, conn, now=time.time() + 121)["bookings"] == 1
    conn.close()


def _batch_text(cfg) -> str:
    texts = []
    for _n, path in outbox.batch_files(cfg):
        texts.append(gzip.decompress(path.read_bytes()).decode())
    assert texts, "no batch sealed"
    return "\n".join(texts)


def test_no_phone_number_in_any_upstream_batch(cfg, conn):
    local = activity(conn, capacity=50)
    county = activity(conn, capacity=50, title="县里的活动")
    conn.execute("UPDATE act_activities SET origin = 'county' WHERE id = ?", (county["id"],))
    made = _book_some(conn, cfg, local, 6) + [aq.book(conn, cfg, county["id"], {"name": "欧阳春花", "phone": p,
                                                                                "seats": 2}, terminal=f"c{i}")
                                               for i, p in enumerate(PHONES[40:44])]
    aq.cancel(conn, cfg, made[1]["order_id"])
    aq.check_in(conn, cfg, made[0]["code"])
    campaign(conn, cfg)
    from edgenode.node.campaigns.queries import vote
    vote(conn, "qunwen-2026", "12", terminal="term0")
    fq.submit_request(conn, cfg, "想看果树修剪", terminal="term0")
    uplink.seal(cfg, conn)
    text = _batch_text(cfg)
    assert '"k":"booking"' in text and '"k":"checkin"' in text and '"k":"vote"' in text
    leaked = [p for p in PHONES if p in text] + [n for n in NAMES if n in text]
    leaked += [b["code"] for b in made if b["code"] in text]
    assert not leaked, f"personal data in the batches: {leaked}"
    # Seats travel as counts.
    assert text.count('"k":"booking"') == 10 and '"seats":2' in text


def test_contacts_upstream_only_for_county_activities_when_configured(tmp_path):
    cfg = make_config(tmp_path / "d", activities__contacts_upstream=True)
    conn = open_main(cfg)
    local = activity(conn, capacity=5)
    county = activity(conn, capacity=5, title="县里的活动")
    conn.execute("UPDATE act_activities SET origin = 'county' WHERE id = ?", (county["id"],))
    aq.book(conn, cfg, local["id"], {"name": "陈忠孝", "phone": PHONES[1], "seats": 1}, terminal="a")
    aq.book(conn, cfg, county["id"], {"name": "欧阳春花", "phone": PHONES[2], "seats": 1}, terminal="b")
    uplink.seal(cfg, conn)
    text = _batch_text(cfg)
    assert PHONES[2] in text and "欧阳春花" in text
    assert PHONES[1] not in text and "陈忠孝" not in text
    conn.close()


def test_scheduler_housekeeping_purges(tmp_path):
    from edgenode.node.sync.runner import run_job
    cfg = make_config(tmp_path / "d", activities__retention_days=0)
    conn = open_main(cfg)
    a = activity(conn, capacity=5, start=time.time() + 1, end=time.time() + 2)
    aq.book(conn, cfg, a["id"], {"name": "陈忠孝", "phone": PHONES[7], "seats": 1}, terminal="t")
    time.sleep(2.1)
    job = run_job(cfg, "housekeeping")
    assert job["state"] == "done", job
    assert conn.execute("SELECT phone FROM act_bookings").fetchone()[0] == ""
    assert PHONES[7].encode() not in _file_bytes(cfg)
    conn.close()
