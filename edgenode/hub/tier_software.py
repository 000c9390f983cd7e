"""The software section of a county's hourly report, and what a province makes of it.

A county hub adds ``software`` to each report (hub/tiers.py): its own version, how many of
its nodes run each version, and its rollout of the release the province asked for::

    {"version": "0.1.0", "fleet": {"0.1.0": 230, "0.1.1": 18, "unknown": 2},
     "rollout": {"upstream": 7, "version": "0.1.1", "state": "halted", "code": "E_ROLLOUT_HALTED",
                 "reason": "...", "reason_zh": "...", "nodes": 250, "updated": 1, "failed": 1}}

``rollout.state`` is ``waiting`` (not started yet: fetching, or another rollout running there),
``running``, ``done``, ``halted``, ``cancelled`` or ``failed`` (the release was refused there).
The province refuses a whole report whose section is not exactly this shape (bogus versions,
oversized text, wrong types: ``E_REPORT_SOFTWARE``), so nothing of it is stored; a stored
section moves the province's rollout on (:func:`advance`, rollout.on_county_report).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

from edgenode import __version__
from edgenode.core.errors import EdgenodeError
from edgenode.hub import fleet as fleet_mod, rollout, rollout_queries, tier_software_queries as q
from edgenode.protocol.release import version_key

STATES = ("waiting", "running", "done", "halted", "cancelled", "failed")
STATE_ZH = {"waiting": "等待开始", "running": "县内分批更新中", "done": "县内已全部更新", "halted": "县内已自动暂停",
            "cancelled": "县里已取消", "failed": "县里拒收了这个版本"}
CODE = re.compile(r"^E_[A-Z0-9_]{1,40}$")
MAX_TEXT = 1000       # characters of a reason; a longer one is refused, not cut
MAX_VERSIONS = 100    # distinct versions in a county's fleet
MAX_COUNT = 10 ** 7
ROLLOUT_KEYS = {"upstream", "version", "state", "code", "reason", "reason_zh", "nodes", "updated", "failed"}


# -- at a county: the section it sends -------------------------------------------------------------


def _local_state(conn, row) -> dict:
    """The county's own rollout for a province rollout, as the section's ``rollout``."""
    out = {"upstream": row["upstream_id"], "version": row["version"], "state": "waiting", "code": row["code"],
           "reason": row["reason"], "reason_zh": row["reason_zh"], "nodes": 0, "updated": 0, "failed": 0}
    if row["state"] in ("failed", "done"):
        out["state"] = row["state"]
    elif row["state"] == "started" and row["local_id"] is not None:
        r = rollout_queries.rollout(conn, row["local_id"])
        counts = q.rollout_counts(conn, row["local_id"])
        out.update(state=r["state"], reason=r["reason"], reason_zh=r["reason_zh"], nodes=sum(counts.values()),
                   updated=counts.get("updated", 0), failed=counts.get("failed", 0),
                   code={"halted": "E_ROLLOUT_HALTED", "cancelled": "E_ROLLOUT_CANCELLED"}.get(r["state"], ""))
    return out


def brief(conn: sqlite3.Connection, cfg, *, now: float | None = None) -> dict:
    """What a county tells its province about software with every report."""
    versions: dict[str, int] = {}
    for r in fleet_mod.fleet(conn, cfg, now=now):
        if r["status"] != "revoked":
            v = r["version"] if _is_version(r["version"]) else "unknown"
            versions[v] = versions.get(v, 0) + 1
    if len(versions) > MAX_VERSIONS:  # keep the most common; the rest are counted as unknown
        keep = sorted(versions, key=versions.get, reverse=True)[:MAX_VERSIONS - 1]
        versions = {**{v: versions[v] for v in keep},
                    "unknown": sum(n for v, n in versions.items() if v not in keep)}
    row = q.latest_upstream_rollout(conn)
    return {"version": __version__, "fleet": versions, "rollout": None if row is None else _local_state(conn, row)}


# -- at a province: checking and keeping what a county sent ----------------------------------------


def _is_version(v) -> bool:
    try:
        version_key(v)
    except (EdgenodeError, TypeError, ValueError, AttributeError):
        return False
    return isinstance(v, str)


def _refuse(why: str) -> EdgenodeError:
    return EdgenodeError("E_REPORT_SOFTWARE", f"the report's software section is refused: {why}",
                         zh="汇总报告中的软件版本信息格式错误，已拒收。")


def _count(v, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < MAX_COUNT:
        raise _refuse(f"{what} must be a count")
    return v


def _text(v, what: str) -> str:
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        raise _refuse(f"{what} must be text of at most {MAX_TEXT} characters")
    return v


def _clean_rollout(raw) -> dict | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != ROLLOUT_KEYS:
        raise _refuse(f"rollout must have exactly {sorted(ROLLOUT_KEYS)}")
    up = raw["upstream"]
    if not isinstance(up, int) or isinstance(up, bool) or not 0 < up < 2 ** 53:
        raise _refuse("rollout.upstream must be a rollout id")
    if not _is_version(raw["version"]):
        raise _refuse("rollout.version is not a version")
    if raw["state"] not in STATES:
        raise _refuse(f"rollout.state must be one of {STATES}")
    code = _text(raw["code"], "rollout.code")
    if code and not CODE.match(code):
        raise _refuse("rollout.code is not an E_ code")
    return {"upstream": up, "version": raw["version"], "state": raw["state"], "code": code,
            "reason": _text(raw["reason"], "rollout.reason"), "reason_zh": _text(raw["reason_zh"], "rollout.reason_zh"),
            **{k: _count(raw[k], f"rollout.{k}") for k in ("nodes", "updated", "failed")}}


def clean(raw) -> dict | None:
    """A received section with only known, checked fields; None when absent; ``E_REPORT_SOFTWARE`` otherwise."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"version", "fleet", "rollout"}:
        raise _refuse("expected exactly version, fleet and rollout")
    if not _is_version(raw["version"]):
        raise _refuse("version is not a version")
    fleet = raw["fleet"]
    if not isinstance(fleet, dict) or len(fleet) > MAX_VERSIONS:
        raise _refuse(f"fleet must map at most {MAX_VERSIONS} versions to counts")
    if not all(k == "unknown" or _is_version(k) for k in fleet):
        raise _refuse("fleet names something that is not a version")
    return {"version": raw["version"], "fleet": {k: _count(v, "fleet") for k, v in fleet.items()},
            "rollout": _clean_rollout(raw["rollout"])}


def store(conn: sqlite3.Connection, via: str, report_no: int, sw: dict | None, at: float) -> None:
    """In the caller's transaction (tiers.receive_report's); ``sw`` already cleaned."""
    if sw is not None:
        q.upsert_county_software(conn, via, report_no, sw["version"], json.dumps(sw, ensure_ascii=False), at)


def latest(conn: sqlite3.Connection, via: str) -> dict | None:
    row = q.county_software(conn, via)
    return None if row is None else {**json.loads(row["body"]), "at": row["at"], "report_no": row["report_no"]}


def advance(conn: sqlite3.Connection, via: str, now: float | None = None) -> dict | None:
    """After a report (stored or a duplicate): the county's latest section moves the province's rollout,
    and the answer's offer comes back.  Read from what is stored, so a crash in between is made up next time."""
    return rollout.on_county_report(conn, via, latest(conn, via), time.time() if now is None else now)


def counties_of(conn: sqlite3.Connection, rollout_row: dict) -> list[dict]:
    """A province rollout's counties with what each last reported (for the pages and ``rollout show``)."""
    stored = q.all_county_software(conn)
    out = []
    for m in rollout_row["nodes"]:
        row = stored.get(m["node_id"])
        sw = json.loads(row["body"]) if row else {}
        r = sw.get("rollout") or {}
        mine = r.get("upstream") == rollout_row["id"]
        out.append({**m, "hub_version": sw.get("version", ""), "fleet": sw.get("fleet") or {},
                    "reported_at": row["at"] if row else None,
                    "county_state": r.get("state", "") if mine else "",
                    "county_state_zh": STATE_ZH.get(r.get("state"), "") if mine else "",
                    "county_reason_zh": (r.get("reason_zh") or r.get("reason") or "") if mine else "",
                    "county_counts": {k: r.get(k, 0) for k in ("nodes", "updated", "failed")} if mine else {}})
    return out


def resolve_counties(conn: sqlite3.Connection, names: list[str]) -> list[str]:
    """Pilot counties by hub id or by name; an unknown or ambiguous name is left as given (start refuses it)."""
    out = []
    for n in names:
        found = q.hub_node_ids_by_name(conn, n)
        out.append(found[0] if len(found) == 1 else n)
    return out
