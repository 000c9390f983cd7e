"""Helpers for the portal, admin and serving tests (issue 3)."""

from __future__ import annotations

import re

from edgenode.admin import accounts

PASSWORD = "correct horse 1"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str = "/admin/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


def set_admin(conn, password: str = PASSWORD) -> dict:
    return accounts.set_password(conn, password)


def login(client, password: str = PASSWORD, *, username: str = "admin", next: str | None = None):
    token = csrf_token(client)
    path = "/admin/login" + (f"?next={next}" if next else "")
    return client.post(path, data={"username": username, "password": password, "csrf_token": token})
