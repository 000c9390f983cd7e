"""Signed HTTP requests from the node to its county hub (protocol v1).

Every call after enrolment carries ``X-Edgenode-Node``, ``X-Edgenode-Timestamp`` and
``X-Edgenode-Signature`` over ``METHOD\\nPATH\\nTIMESTAMP\\nsha256hex(BODY)``.
Transport failures become ``E_HUB_UNREACHABLE`` (the caller backs off); the hub's
refusals keep the hub's own stable code (``E_NODE_UNKNOWN``, ``E_BAD_SIGNATURE``, ...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from urllib.parse import urlsplit

from edgenode import __version__
from edgenode.core.errors import EdgenodeError
from edgenode.node.sync import client_queries as q

USER_AGENT = f"edgenode-node/{__version__}"


class HubUnreachable(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_HUB_UNREACHABLE", message, zh="连接不上县中心：" + message, status=503)


class HubRefused(EdgenodeError):
    def __init__(self, code: str, message: str, zh: str | None, status: int):
        super().__init__(code, message, zh=zh, status=status)


def request_message(method: str, path: str, timestamp: int, body: bytes) -> bytes:
    return f"{method.upper()}\n{path}\n{int(timestamp)}\n{hashlib.sha256(body).hexdigest()}".encode()


def signed_headers(ident, method: str, path: str, body: bytes, timestamp: int | None = None) -> dict:
    ts = int(time.time() if timestamp is None else timestamp)
    sig = ident.sign(request_message(method, path, ts, body))
    return {"X-Edgenode-Node": ident.node_id, "X-Edgenode-Timestamp": str(ts),
            "X-Edgenode-Signature": base64.b64encode(sig).decode()}


def hub_url(cfg, conn: sqlite3.Connection) -> str:
    """The configured hub URL, else the one recorded at enrolment; '' when neither."""
    if cfg["sync.hub_url"]:
        return cfg["sync.hub_url"].rstrip("/")
    url = q.enrolled_hub_url(conn)
    return url.rstrip("/") if url is not None else ""


def require_hub(cfg, conn) -> str:
    url = hub_url(cfg, conn)
    if not url:
        raise EdgenodeError("E_NOT_ENROLLED", "this node is not enrolled with a hub: run `edgenode enroll HUB_URL "
                            "--code CODE`", zh="本服务点还没有在县中心注册。", status=409)
    return url


def session():
    """A keep-alive session for many calls to one hub."""
    import requests

    return requests.Session()


def call(cfg, base_url: str, method: str, path: str, *, body: bytes = b"", ident=None, headers: dict | None = None,
         session=None, content_type: str = "application/json") -> dict:
    """One request; returns the JSON answer of a 2xx, raises HubUnreachable or HubRefused."""
    import requests  # here, not at the top: requests costs ~14 MB in every process that imports the CLI

    url = base_url.rstrip("/") + path
    full_path = urlsplit(url).path
    h = {"User-Agent": USER_AGENT, "Content-Type": content_type, **(headers or {})}
    if ident is not None:
        h.update(signed_headers(ident, method, full_path, body))
    try:
        r = (session or requests).request(method, url, data=body, headers=h, timeout=cfg["sync.http_timeout_seconds"])
    except requests.RequestException as e:
        raise HubUnreachable(f"{method} {url}: {type(e).__name__}") from None
    try:
        doc = r.json()
    except ValueError:
        doc = None
    if 200 <= r.status_code < 300:
        if not isinstance(doc, dict):
            raise HubRefused("E_HUB_ANSWER", f"{method} {url}: answer is not JSON", None, 502)
        return doc
    if r.status_code >= 500 and not (isinstance(doc, dict) and isinstance(doc.get("error"), dict)):
        raise HubUnreachable(f"{method} {url}: HTTP {r.status_code}")
    err = (doc or {}).get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        raise HubRefused(str(err.get("code") or "E_HUB_REFUSED"), str(err.get("message") or r.status_code),
                         err.get("message_zh"), r.status_code)
    raise HubRefused("E_HUB_REFUSED", f"{method} {url}: HTTP {r.status_code}", None, r.status_code)


def post_json(cfg, base_url: str, path: str, obj, *, ident=None, session=None) -> dict:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return call(cfg, base_url, "POST", path, body=body, ident=ident, session=session)
