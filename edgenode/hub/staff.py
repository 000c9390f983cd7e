"""County staff accounts: scrypt password hashes and a lockout after repeated failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import time

from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError
from edgenode.hub import staff_queries as q
from edgenode.hub.registry import log_event

N, R, P = 2 ** 14, 8, 1
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(stored: str, password: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def set_password(conn: sqlite3.Connection, username: str, password: str) -> None:
    username = (username or "").strip()
    if not username or len(username) > 64:
        raise EdgenodeError("E_STAFF_NAME", "the user name must be 1 to 64 characters", zh="用户名长度应为1到64个字符。")
    if len(password or "") < MIN_LENGTH:
        raise EdgenodeError("E_WEAK_PASSWORD", f"the password must have at least {MIN_LENGTH} characters",
                            zh=f"密码至少需要{MIN_LENGTH}个字符。")
    with transaction(conn):
        q.upsert_password(conn, username, hash_password(password), time.time())


def authenticate(conn: sqlite3.Connection, username: str, password: str, *, max_failures: int = 5,
                 lockout_seconds: int = 900) -> bool:
    """True for a right password; counts failures and locks the account for a while."""
    row = q.account(conn, (username or "").strip())
    now = time.time()
    if row is None:
        check_password(hash_password("x" * MIN_LENGTH), password or "")  # same cost: no user-name oracle
        log_event(conn, "warning", "E_LOGIN", None, "login failed for an unknown user")
        return False
    if row["locked_until"] > now:
        log_event(conn, "warning", "E_LOGIN_LOCKED", None, f"login while locked: {row['username']}")
        raise EdgenodeError("E_LOGIN_LOCKED", "too many failed logins; try again later",
                            zh="登录失败次数太多，请稍后再试。", status=429)
    if check_password(row["pw_hash"], password or ""):
        with transaction(conn):
            q.reset_failures(conn, row["username"])
        return True
    failures = row["failures"] + 1
    with transaction(conn):
        q.set_failures(conn, row["username"], 0 if failures >= max_failures else failures,
                       now + lockout_seconds if failures >= max_failures else 0)
    log_event(conn, "warning", "E_LOGIN", None, f"login failed for {row['username']}")
    return False


def has_staff(conn: sqlite3.Connection) -> bool:
    return q.any_account(conn)
