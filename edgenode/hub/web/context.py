"""Per-thread hub database connections and the hub's shared objects.

A connection is opened once per worker thread and reused: opening one (and its
PRAGMAs) per request would cost more than verifying a heartbeat.  Keyed by
process and path, so a forked worker or a second app in a test never shares one.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone

from flask import current_app

from edgenode.core.db import connect

_local = threading.local()


def hub():
    return current_app.extensions["edgenode_hub"]


def cfg():
    return hub().cfg


def settings():
    """The [hub] settings section, built once per app."""
    return hub().settings


def get_db(synchronous: str = "FULL"):
    """This thread's connection; ``synchronous="NORMAL"`` gives a second one for heartbeats."""
    key = (hub().db_path, synchronous)
    conns = getattr(_local, "conns", None)
    if conns is None or getattr(_local, "pid", None) != os.getpid():
        _local.conns = conns = {}
        _local.pid = os.getpid()
    conn = conns.get(key)
    if conn is None:
        conn = conns[key] = connect(key[0], synchronous=synchronous)
    return conn


def hubtime(t) -> str:
    """A unix time as local time of the hub's zone (hub.utc_offset_hours)."""
    if t is None:
        return ""
    try:
        # Whole minutes of one zone: the same minute formats the same (a page formats hundreds).
        key = (int(float(t) // 60), settings().utc_offset_hours)
    except (OverflowError, ValueError):
        return "?"
    s = _MINUTES.get(key)
    if s is None:
        try:
            s = datetime.fromtimestamp(key[0] * 60, timezone(timedelta(hours=key[1]))).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, ValueError, OSError):
            return "?"
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        _MINUTES[key] = s
    return s


_MINUTES: dict[tuple, str] = {}


def duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    d, h = int(seconds // 86400), int(seconds % 86400 // 3600)
    return f"{d}天{h}小时" if d else f"{h}小时{int(seconds % 3600 // 60)}分"


def init_app(app):
    app.add_template_filter(hubtime, "hubtime")
    app.add_template_filter(duration, "duration")

    @app.context_processor
    def inject():
        from edgenode.hub.problems import tz_label
        return {"hub_name": settings().name, "tz_label": tz_label(settings().utc_offset_hours),
                "has_counties": _has_counties()}


def _has_counties() -> bool:
    """Whether downstream hubs are enrolled here (a provincial hub): the nav shows 各县情况."""
    from edgenode.hub import province
    return province.has_counties(get_db())
