"""Activities and bookings: codes, statuses, limits, hostile input, masking, CSV, bundles, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import pytest

from edgenode.node.activities import codes, published
from edgenode.node.activities import queries as aq
from edgenode.core.errors import EdgenodeError
from tests.helpers_activities import PHONES, activity


def _book(conn, cfg, aid, i=0, *, terminal=None, seats=1, name="陈忠"):
    return aq.book(conn, cfg, aid, {"name": name, "phone": PHONES[i], "seats": seats}, terminal=terminal or f"t{i}")


def _count(conn):
    return (conn.execute("SELECT count(*) FROM act_bookings").fetchone()[0],
            conn.execute("SELECT count(*) FROM usage_events").fetchone()[0])


def test_pickup_code_is_random_and_stored_only_as_keyed_hash(cfg, conn):
    a = activity(conn, capacity=50)
    made = [_book(conn, cfg, a["id"], i) for i in range(30)]
    got = {b["code"] for b in made}
    assert len(got) == 30 and all(len(c) == 8 and c.isdigit() for c in got)
    assert len({b["order_id"] for b in made}) == 30
    key_file = codes.key_path(cfg)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    rows = {r[0] for r in conn.execute("SELECT code_hash FROM act_bookings")}
    # Neither the code nor its plain (unkeyed) hash is in the database.
    assert not rows & {hashlib.sha256(c.encode()).hexdigest() for c in got}
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = cfg.db_path.read_bytes()
    assert not [c for c in got if c.encode() in data]
    # A different key (another node, or a stolen database without the key file) checks nothing.
    assert codes.code_hash(b"x" * 32, made[0]["code"]) not in rows


@pytest.mark.parametrize("state, code, zh", [
    ("pending", "E_NOT_APPROVED", "尚未审核"),
    ("cancelled", "E_BOOKING_CANCELLED", "已取消"),
    ("checked_in", "E_CODE_USED", "签到过"),
    ("forged", "E_CODE_UNKNOWN", "取票码无效"),
    ("malformed", "E_CODE_INVALID", "8位数字"),
])
def test_check_in_refuses(cfg, conn, state, code, zh):
    a = activity(conn, audit=True)
    b = _book(conn, cfg, a["id"])
    given = b["code"]
    if state == "cancelled":
        aq.cancel(conn, cfg, b["order_id"])
    elif state == "checked_in":
        aq.approve(conn, cfg, b["order_id"])
        assert aq.check_in(conn, cfg, b["code"])["status"] == "checked_in"
    elif state == "forged":
        given = f"{(int(b['code']) + 1) % 10 ** 8:08d}"
    elif state == "malformed":
        given = "1234-567"
    before = conn.execute("SELECT status, updated_at FROM act_bookings").fetchall()
    with pytest.raises(EdgenodeError) as e:
        aq.check_in(conn, cfg, given)
    assert e.value.code == code and zh in e.value.zh
    assert conn.execute("SELECT status, updated_at FROM act_bookings").fetchall() == before


def test_check_in_accepts_spaces_and_limits_to_activity(cfg, conn):
    a, other = activity(conn), activity(conn, title="广场舞培训")
    b = _book(conn, cfg, a["id"])
    with pytest.raises(EdgenodeError) as e:
        aq.check_in(conn, cfg, b["code"], activity_id=other["id"])
    assert e.value.code == "E_CODE_OTHER_ACTIVITY"
    spaced = f"{b['code'][:4]} {b['code'][4:]}"
    assert aq.check_in(conn, cfg, spaced, activity_id=a["id"])["status_zh"] == "已签到"


def test_statuses_and_transitions(cfg, conn):
    a = activity(conn, audit=True)
    b = _book(conn, cfg, a["id"])
    assert b["status_zh"] == "待审核"
    assert aq.approve(conn, cfg, b["order_id"])["status_zh"] == "已审核"
    with pytest.raises(EdgenodeError) as e:
        aq.approve(conn, cfg, b["order_id"])
    assert e.value.code == "E_NOT_PENDING"
    assert aq.check_in(conn, cfg, b["code"])["status_zh"] == "已签到"
    with pytest.raises(EdgenodeError) as e:
        aq.cancel(conn, cfg, b["order_id"])
    assert e.value.code == "E_NOT_CANCELLABLE"
    no_audit = activity(conn, audit=False, title="免审核")
    assert _book(conn, cfg, no_audit["id"], 1)["status_zh"] == "已审核"


def test_capacity_counts_seats_and_cancellation_frees_them(cfg, conn):
    a = activity(conn, capacity=3)
    first = _book(conn, cfg, a["id"], 0, seats=2)
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, a["id"], 1, seats=2)
    assert e.value.code == "E_FULL" and "仅剩1个" in e.value.zh
    _book(conn, cfg, a["id"], 2, seats=1)
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, a["id"], 3)
    assert e.value.zh.startswith("已满")
    aq.cancel(conn, cfg, first["order_id"])
    _book(conn, cfg, a["id"], 4, seats=2)
    assert aq.get_activity(conn, a["id"])["left"] == 0


def test_per_terminal_limit_and_duplicate_phone(cfg, conn):
    limit = cfg["activities.terminal_daily_bookings"]
    acts = [activity(conn, title=f"活动{i}") for i in range(limit + 1)]
    for i in range(limit):
        _book(conn, cfg, acts[i]["id"], i, terminal="flood")
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, acts[limit]["id"], limit, terminal="flood")
    assert e.value.code == "E_TERMINAL_LIMIT" and e.value.status == 429
    _book(conn, cfg, acts[limit]["id"], limit, terminal="another")
    # A day later the terminal may book again.
    aq.book(conn, cfg, acts[0]["id"], {"name": "张宇", "phone": PHONES[50], "seats": 1}, terminal="flood",
            now=time.time() + 86401)
    # One phone number holds one booking per activity until it is cancelled.
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, acts[0]["id"], 0, terminal="elsewhere")
    assert e.value.code == "E_ALREADY_BOOKED"


def test_ended_and_cancelled_activities_refuse_bookings(cfg, conn):
    ended = activity(conn, start=time.time() - 7200, end=time.time() - 60)
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, ended["id"])
    assert e.value.code == "E_ACTIVITY_OVER"
    a = activity(conn)
    b = _book(conn, cfg, a["id"])
    assert aq.cancel_activity(conn, a["id"]) == 1
    assert aq.get_booking(conn, b["order_id"])["status"] == "cancelled"
    with pytest.raises(EdgenodeError) as e:
        _book(conn, cfg, a["id"], 1)
    assert e.value.code == "E_ACTIVITY_CANCELLED"
    assert a["id"] not in {x["id"] for x in aq.list_activities(conn, upcoming=True)}


HOSTILE_BOOKINGS = [
    ({"name": "", "phone": PHONES[0], "seats": 1}, "E_FIELD_REQUIRED", "联系人"),
    ({"name": "   ", "phone": PHONES[0], "seats": 1}, "E_FIELD_REQUIRED", "联系人"),
    ({"name": "陈\x00忠", "phone": PHONES[0], "seats": 1}, "E_FIELD_INVALID", "不允许"),
    ({"name": "陈\u202e忠", "phone": PHONES[0], "seats": 1}, "E_FIELD_INVALID", "不允许"),
    ({"name": "长" * 21, "phone": PHONES[0], "seats": 1}, "E_FIELD_TOO_LONG", "20"),
    ({"name": "陈忠 62242519940418031X", "phone": PHONES[0], "seats": 1}, "E_ID_NUMBER", "身份证"),
    ({"name": "陈忠", "phone": "", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": "12345678901", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": "1380000082", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": "138000008200", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": "1380000O820", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": "<script>", "seats": 1}, "E_PHONE_INVALID", "11位"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": 0}, "E_NUMBER_RANGE", "预约人数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": -3}, "E_NUMBER_RANGE", "预约人数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": 6}, "E_NUMBER_RANGE", "预约人数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": "1.5"}, "E_NUMBER_INVALID", "整数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": "abc"}, "E_NUMBER_INVALID", "整数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": "9" * 40}, "E_NUMBER_RANGE", "预约人数"),
    ({"name": "陈忠", "phone": PHONES[0], "seats": True}, "E_NUMBER_INVALID", "整数"),
]


@pytest.mark.parametrize("data, code, zh", HOSTILE_BOOKINGS)
def test_hostile_bookings_change_nothing(cfg, conn, data, code, zh):
    a = activity(conn)
    before = _count(conn)
    with pytest.raises(EdgenodeError) as e:
        aq.book(conn, cfg, a["id"], data, terminal="t")
    assert e.value.code == code and zh in e.value.zh
    assert _count(conn) == before


def test_phone_forms_accepted(cfg, conn):
    a = activity(conn, capacity=10)
    for i, form in enumerate(["139 0000 0001", "139-0000-0002", "+8613900000003"]):
        b = aq.book(conn, cfg, a["id"], {"name": "王", "phone": form, "seats": 1}, terminal=f"x{i}")
        assert aq.get_booking(conn, b["order_id"], full_contact=True)["phone"] == f"1390000000{i + 1}"


HOSTILE_ACTIVITIES = [
    ({"title": ""}, "E_FIELD_REQUIRED"),
    ({"title": "x" * 101}, "E_FIELD_TOO_LONG"),
    ({"start": "明天晚上"}, "E_TIME_INVALID"),
    ({"end": "2026-13-40 25:00"}, "E_TIME_INVALID"),
    ({"start": "2030-01-02 10:00", "end": "2030-01-02 09:00"}, "E_TIME_ORDER"),
    ({"capacity": 0}, "E_NUMBER_RANGE"),
    ({"capacity": "many"}, "E_NUMBER_INVALID"),
    ({"capacity": 10 ** 9}, "E_NUMBER_RANGE"),
    ({"place": "a\x07b"}, "E_FIELD_INVALID"),
]


@pytest.mark.parametrize("change, code", HOSTILE_ACTIVITIES)
def test_hostile_activities_change_nothing(conn, change, code):
    good = {"title": "讲座", "start": "2030-01-02 10:00", "end": "2030-01-02 12:00", "capacity": 10}
    with pytest.raises(EdgenodeError) as e:
        aq.create_activity(conn, {**good, **change})
    assert e.value.code == code
    assert conn.execute("SELECT count(*) FROM act_activities").fetchone()[0] == 0


def test_every_listing_masks_phone_and_csv_is_safe(cfg, conn, runner):
    a = activity(conn, capacity=10)
    b = aq.book(conn, cfg, a["id"], {"name": "=HYPERLINK(\"x\")", "phone": "15520000820", "seats": 1}, terminal="t")
    listed = aq.list_bookings(conn, a["id"])
    assert listed[0]["phone"] == "155****0820"
    csv_text = aq.export_csv(conn, a["id"])
    assert "155****0820" in csv_text and "15520000820" not in csv_text
    assert csv_text.startswith("\ufeff活动名称,订单ID") and ",'=" in csv_text
    assert aq.lookup(conn, cfg, b["order_id"], b["code"])["phone"] == "155****0820"
    out = runner("activity", "bookings", a["id"]).output
    assert "155****0820" in out and "15520000820" not in out
    out = runner("activity", "export", a["id"]).output
    assert "155****0820" in out and "15520000820" not in out
    assert aq.get_booking(conn, b["order_id"], full_contact=True)["phone"] == "15520000820"


def test_lookup_and_self_cancel(cfg, conn):
    a = activity(conn, capacity=1)
    b = _book(conn, cfg, a["id"])
    for order, code in [(b["order_id"], "00000000"), ("1" * 20, b["code"]), (b["order_id"], ""), ("", "")]:
        with pytest.raises(EdgenodeError) as e:
            aq.lookup(conn, cfg, order, code)
        assert e.value.code == "E_LOOKUP_FAILED"
    with pytest.raises(EdgenodeError):
        aq.cancel_own(conn, cfg, b["order_id"], "00000000")
    assert aq.get_booking(conn, b["order_id"])["status"] == "approved"
    assert aq.cancel_own(conn, cfg, b["order_id"], b["code"])["status"] == "cancelled"
    assert aq.get_activity(conn, a["id"])["left"] == 1


def _manifest(**sections) -> bytes:
    return json.dumps({"format": 1, "channel": "county", "seq": 3, "resources": [], **sections},
                      ensure_ascii=False).encode()


def test_bundle_sections_publish_update_and_cancel(cfg, conn):
    act = {"id": "lecture-12", "title": "县文化馆讲座", "place": "村文化室", "start": "2030-03-01 19:30",
           "end": "2030-03-01 21:00", "capacity": 2, "audit": True, "resource": "rice-01"}
    camp = {"id": "qunwen", "title": "群文杯", "start": "2030-01-01 00:00", "end": "2030-12-31 23:59",
            "items": [{"id": "12", "title": "黄河之歌", "resource": "choir-12"}],
            "ranking": {"as_of": 1795600000, "nodes": 31, "items": [{"item": "12", "votes": 3266}]}}
    assert published.apply_manifest_sections(conn, "county", 3, _manifest(activities=[act], campaigns=[camp])) == \
        {"activities": 1, "campaigns": 1}
    a = aq.get_activity(conn, "county.lecture-12")
    assert a["origin"] == "county" and a["resource_id"] == "county.rice-01" and a["source"] == "bundle:county:3"
    from edgenode.node.campaigns.queries import get_campaign
    c = get_campaign(conn, "county.qunwen")
    assert c["daily_limit"] == 2 and c["items"][0]["resource_id"] == "county.choir-12"
    assert c["county"]["items"][0]["votes"] == 3266
    b = _book(conn, cfg, a["id"], seats=2)
    # A later bundle lowers the capacity below what is booked: the bookings stand.
    published.apply_manifest_sections(conn, "county", 4, _manifest(activities=[{**act, "capacity": 1}]))
    assert aq.get_activity(conn, a["id"])["capacity"] == 2
    published.apply_manifest_sections(conn, "county", 5, _manifest(activities=[{**act, "cancelled": True}]))
    assert aq.get_booking(conn, b["order_id"])["status"] == "cancelled"
    assert published.apply_manifest_sections(conn, "county", 6, _manifest()) == {"activities": 0, "campaigns": 0}


@pytest.mark.parametrize("sections", [
    {"activities": {"id": "x"}},
    {"activities": [{"id": "x", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00",
                     "capacity": 5, "surprise": 1}]},
    {"activities": [{"id": "../x", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00",
                     "capacity": 5}]},
    {"activities": [{"id": "x", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-01 09:00",
                     "capacity": 5}]},
    {"activities": [{"id": "x", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00",
                     "capacity": 5}] * 2},
    {"campaigns": [{"id": "c", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-02 10:00", "items": []}]},
    {"campaigns": [{"id": "c", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-02 10:00",
                    "items": [{"id": "1", "title": "a"}, {"id": "1", "title": "b"}]}]},
    {"campaigns": [{"id": "c", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-02 10:00",
                    "items": [{"id": "1", "title": "a"}], "ranking": [1, 2]}]},
])
def test_bundle_sections_hostile_change_nothing(conn, sections):
    good = {"id": "ok", "title": "t", "start": "2030-01-01 10:00", "end": "2030-01-01 11:00", "capacity": 5}
    data = _manifest(**{"activities": [good], **sections}) if "campaigns" in sections else _manifest(**sections)
    with pytest.raises(EdgenodeError) as e:
        published.apply_manifest_sections(conn, "county", 1, data)
    assert e.value.code == "E_MANIFEST_INVALID"
    with pytest.raises(EdgenodeError):
        published.check_manifest_sections(data, "county")
    assert conn.execute("SELECT count(*) FROM act_activities").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM camp_campaigns").fetchone()[0] == 0


def test_cli_admin_actions(cfg, runner):
    out = runner("activity", "create", "--title", "农机培训", "--start", "2030-05-01 09:00", "--end",
                 "2030-05-01 11:00", "--capacity", "5", "--audit", "--json").output
    aid = json.loads(out)["id"]
    from edgenode.core.db import open_main
    conn = open_main(cfg)
    b = _book(conn, cfg, aid)
    conn.close()
    assert aid in runner("activity", "list").output
    r = runner("activity", "checkin", b["code"])
    assert r.exit_code == 1 and "E_NOT_APPROVED" in r.output
    assert "approved" in runner("activity", "approve", b["order_id"]).output
    assert "checked in" in runner("activity", "checkin", b["code"]).output
    r = runner("activity", "checkin", b["code"])
    assert r.exit_code == 1 and "E_CODE_USED" in r.output
    r = runner("activity", "cancel", b["order_id"])
    assert r.exit_code == 1 and "E_NOT_CANCELLABLE" in r.output
    assert "已签到" in runner("activity", "export", aid).output
    r = runner("activity", "create", "--title", "", "--start", "x", "--end", "y", "--capacity", "1")
    assert r.exit_code == 1 and "E_" in r.output
    assert "cancelled" in runner("activity", "cancel-activity", aid).output


def test_signed_bundle_publishes_through_the_import_pipeline(cfg, conn, store, tmp_path):
    from edgenode.node.imports.pipeline import import_bundle
    from tests.helpers_bundles import make_bundle, new_key, rewrite_manifest, trust_key
    sk = new_key(tmp_path)
    trust_key(conn, sk, "county")
    act = {"id": "film-1", "title": "露天电影", "start": "2030-03-01 19:30", "end": "2030-03-01 21:30",
           "capacity": 80, "audit": False}
    bad = make_bundle(tmp_path / "b1", sk, channel="county", seq=1, n=1)
    rewrite_manifest(bad, sk, lambda d: d.update(activities=[{**act, "capacity": -1}]))
    r = import_bundle(cfg, conn, store, bad, source="usb")
    assert r.result == "failed" and r.error_code == "E_MANIFEST_INVALID"
    assert conn.execute("SELECT count(*) FROM act_activities").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM resources WHERE channel = 'county'").fetchone()[0] == 0
    good = make_bundle(tmp_path / "b2", sk, channel="county", seq=2, n=1)
    rewrite_manifest(good, sk, lambda d: d.update(activities=[act], campaigns=[{
        "id": "qunwen", "title": "群文杯", "start": "2030-01-01 00:00", "end": "2030-02-01 00:00",
        "items": [{"id": "1", "title": "黄河之歌"}]}]))
    r = import_bundle(cfg, conn, store, good, source="usb")
    assert r.result == "imported", r.error
    a = aq.get_activity(conn, "county.film-1")
    assert a["origin"] == "county" and a["source"] == "bundle:county:2" and a["capacity"] == 80
    assert conn.execute("SELECT origin FROM camp_campaigns WHERE id = 'county.qunwen'").fetchone()[0] == "county"


def test_screening_links_a_cached_resource(demo_cfg, demo_conn, client):
    rid = demo_conn.execute("SELECT id FROM resources WHERE visible = 1 AND kind = 'video' LIMIT 1").fetchone()[0]
    with pytest.raises(EdgenodeError) as e:
        activity(demo_conn, resource_id="nope.missing")
    assert e.value.code == "E_RESOURCE_UNKNOWN"
    a = activity(demo_conn, resource_id=rid, title="放映")
    page = client.get(f"/activities/{a['id']}").get_data(as_text=True)
    assert f"/r/{rid}" in page and "放映内容" in page


def test_county_publishes_with_build_bundle(cfg, conn, store, tmp_path):
    """The publisher's path: programme.json beside the media goes into the signed manifest."""
    from edgenode.protocol.build import build_bundle
    from edgenode.node.imports.pipeline import import_bundle
    from tests.helpers_bundles import make_source, new_key, trust_key
    sk = new_key(tmp_path)
    trust_key(conn, sk, "county")
    src = make_source(tmp_path / "src", n=1)
    (src / "programme.json").write_text(json.dumps({"activities": [
        {"id": "opera", "title": "黄梅戏下乡", "start": "2030-04-01 19:00", "end": "2030-04-01 21:00",
         "capacity": 120}]}, ensure_ascii=False), encoding="utf-8")
    bundle = build_bundle(src, "county", 1, tmp_path / "out", secret_key=sk)
    assert import_bundle(cfg, conn, store, bundle, source="usb").result == "imported"
    assert aq.get_activity(conn, "county.opera")["capacity"] == 120
    (src / "programme.json").write_text('{"activities": [{"id": "bad"}]}', encoding="utf-8")
    with pytest.raises(EdgenodeError) as e:
        build_bundle(src, "county", 2, tmp_path / "out", secret_key=sk)
    assert e.value.code == "E_MANIFEST_INVALID"


def test_lookup_locks_after_repeated_wrong_codes(cfg, conn):
    a = activity(conn)
    b = _book(conn, cfg, a["id"])
    now = time.time()
    for i in range(aq.LOOKUP_MAX_FAILURES):
        with pytest.raises(EdgenodeError) as e:
            aq.lookup(conn, cfg, b["order_id"], f"{i:08d}" if f"{i:08d}" != b["code"] else "99999999", now=now)
        assert e.value.code == "E_LOOKUP_FAILED"
    with pytest.raises(EdgenodeError) as e:
        aq.lookup(conn, cfg, b["order_id"], b["code"], now=now + 1)  # even the right code, for now
    assert e.value.code == "E_LOOKUP_LOCKED" and e.value.status == 429
    assert aq.lookup(conn, cfg, b["order_id"], b["code"], now=now + aq.LOOKUP_LOCK_SECONDS + 1)["seats"] == 1
    assert aq.check_in(conn, cfg, b["code"])["status"] == "checked_in"  # the administrator is not locked out
