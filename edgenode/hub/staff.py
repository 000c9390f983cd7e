"""County staff accounts: scrypt password hashes, roles, and a lockout after repeated failures.

Two roles: 县级管理员 (``admin``) manages enrolment, revocation, publishing and accounts;
查看 (``viewer``) reads every page but changes nothing (``web/auth.py`` refuses its writes).
"""

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
ROLES = {"admin": "县级管理员", "viewer": "查看"}


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


def set_password(conn: sqlite3.Connection, username: str, password: str, role: str | None = None) -> None:
    """Create the account or change its password; ``role`` None keeps an account's role (a new
    account made this way is an administrator, as every account was before roles)."""
    username = (username or "").strip()
    if role is not None and role not in ROLES:
        raise EdgenodeError("E_STAFF_ROLE", f"role must be one of {', '.join(ROLES)}",
                            zh="角色只能是 admin（县级管理员）或 viewer（查看）。")
    if not username or len(username) > 64:
        raise EdgenodeError("E_STAFF_NAME", "the user name must be 1 to 64 characters", zh="用户名长度应为1到64个字符。")
    if len(password or "") < MIN_LENGTH:
        raise EdgenodeError("E_WEAK_PASSWORD", f"the password must have at least {MIN_LENGTH} characters",
                            zh=f"密码至少需要{MIN_LENGTH}个字符。")
    with transaction(conn):
        q.upsert_password(conn, username, hash_password(password), time.time())
        if role is not None:
            q.set_role(conn, username, role)


def set_role(conn: sqlite3.Connection, username: str, role: str) -> None:
    if role not in ROLES:
        raise EdgenodeError("E_STAFF_ROLE", f"role must be one of {', '.join(ROLES)}",
                            zh="角色只能是 admin（县级管理员）或 viewer（查看）。")
    with transaction(conn):
        if not q.set_role(conn, (username or "").strip(), role):
            raise EdgenodeError("E_STAFF_UNKNOWN", f"no staff account {username!r}", zh="没有这个账户。", status=404)


def role_of(conn: sqlite3.Connection, username: str) -> str | None:
    """The account's role, None for an account that no longer exists."""
    row = q.account(conn, username or "")
    return row["role"] if row is not None else None


def accounts(conn: sqlite3.Connection) -> list[dict]:
    return q.accounts(conn)


def authenticate(conn: sqlite3.Connection, username: str, password: str, *, max_failures: int = 5,
                 lockout_seconds: int = 900, offset_hours: float = 8.0) -> bool:
    """True for a right password; counts failures and locks the account for a while."""
    row = q.account(conn, (username or "").strip())
    now = time.time()
    if row is None:
        check_password(hash_password("x" * MIN_LENGTH), password or "")  # same cost: no user-name oracle
        log_event(conn, "warning", "E_LOGIN", None, "login failed for an unknown user")
        return False
    if row["locked_until"] > now:
        log_event(conn, "warning", "E_LOGIN_LOCKED", None, f"login while locked: {row['username']}")
        raise locked_error(row["username"], row["locked_until"], offset_hours)
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


def locked_error(username: str, until: float, offset_hours: float) -> EdgenodeError:
    """The lock-out message: when to try again (in the statistics time zone) and whom to ask."""
    from datetime import datetime, timedelta, timezone
    at = datetime.fromtimestamp(until + 59, timezone(timedelta(hours=offset_hours))).strftime("%H:%M")
    sign = "+" if offset_hours >= 0 else "-"
    return EdgenodeError(
        "E_LOGIN_LOCKED", f"too many failed logins for {username}; locked until {int(until)}",
        zh=f"登录失败次数太多，账户“{username}”已暂时锁定。请在 {at}（UTC{sign}{abs(offset_hours):g}）之后再登录。"
           f"忘记密码请找县级管理员在服务器上运行 edgenode hub set-password {username} 重设，重设后可立即登录。",
        status=429)


def has_staff(conn: sqlite3.Connection) -> bool:
    return q.any_account(conn)
