"""The administrator account: scrypt password hashes, login checks and lock-out.

Framework-free: the web login, ``edgenode admin`` and tests call these
functions with a connection.  A password is never stored, logged or returned;
only its scrypt hash (``hashlib.scrypt``, 16 MiB, about 50 ms per check on the
appliance's CPU) is kept.

Lock-out is per account and survives restarts because it lives in the
database: after ``max_failures`` consecutive failures the account refuses every
password, even the right one, until ``lockout_seconds`` have passed.  The
administrator can end a lock-out at the console with ``edgenode admin unlock``
(or by setting a new password).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import sqlite3
import time

from edgenode.node.web import accounts_queries as acq
from edgenode.core.db import transaction
from edgenode.core.errors import EdgenodeError

log = logging.getLogger(__name__)

DEFAULT_USER = "admin"
MIN_PASSWORD = 8
MAX_PASSWORD = 256
# scrypt cost: N=2^14, r=8 needs 16 MiB and ~50 ms, enough to make guessing slow
# without letting a burst of logins exhaust a small appliance's memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
_MAXMEM = 64 * 1024 * 1024


class LoginFailed(EdgenodeError):
    def __init__(self):
        super().__init__("E_LOGIN_FAILED", "wrong user name or password", zh="用户名或密码不正确", status=401)


class LoginLocked(EdgenodeError):
    def __init__(self, seconds: int):
        minutes = max(1, (seconds + 59) // 60)
        super().__init__("E_LOGIN_LOCKED", f"too many failed logins; locked for {seconds} more seconds",
                         zh=f"登录失败次数太多，请 {minutes} 分钟后再试", status=429)
        self.seconds = seconds


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=_MAXMEM, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), maxmem=_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        log.error("E_ADMIN_HASH: stored admin password hash is malformed")
        return False
    return hmac.compare_digest(actual, expected)


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise EdgenodeError("E_WEAK_PASSWORD", f"the password must have at least {MIN_PASSWORD} characters",
                            zh=f"密码至少要 {MIN_PASSWORD} 个字符")
    if len(password) > MAX_PASSWORD:
        raise EdgenodeError("E_WEAK_PASSWORD", f"the password must have at most {MAX_PASSWORD} characters",
                            zh=f"密码不能超过 {MAX_PASSWORD} 个字符")
    if password.strip() != password or any(ord(c) < 32 for c in password):
        raise EdgenodeError("E_WEAK_PASSWORD", "the password must not start or end with spaces or hold control "
                            "characters", zh="密码首尾不能有空格，也不能含控制字符")


def get_account(conn: sqlite3.Connection, username: str = DEFAULT_USER) -> dict | None:
    row = acq.account_row(conn, username)
    return dict(row) if row else None


def list_accounts(conn: sqlite3.Connection) -> list[dict]:
    return [public(dict(r)) for r in acq.account_rows(conn)]


def has_account(conn: sqlite3.Connection) -> bool:
    return acq.any_account(conn)


def set_password(conn: sqlite3.Connection, password: str, username: str = DEFAULT_USER) -> dict:
    """Create the account or change its password; clears any lock-out and ends older sessions."""
    check_password_policy(password)
    hashed = hash_password(password)  # outside the write lock: ~50 ms of CPU
    now = time.time()
    with transaction(conn):
        acq.save_password_hash(conn, username, hashed, now)
    log.info("admin password set for %s", username)
    return public(get_account(conn, username))


def unlock(conn: sqlite3.Connection, username: str = DEFAULT_USER) -> bool:
    with transaction(conn):
        n = acq.clear_lockout(conn, username)
    return n > 0


def login(conn: sqlite3.Connection, username: str, password: str, *, max_failures: int,
          lockout_seconds: int, now: float | None = None) -> dict:
    """Check a login; returns the account (without its hash) or raises LoginFailed/LoginLocked.

    An unknown user name costs the same scrypt work as a known one, so timing
    does not tell which names exist.
    """
    now = time.time() if now is None else now
    account = get_account(conn, username or "")
    if account is None:
        verify_password(password or "", _dummy_hash())
        log.warning("E_LOGIN_FAILED: unknown admin user name")
        raise LoginFailed()
    if account["locked_until"] > now:
        log.warning("E_LOGIN_LOCKED: login attempt for %s while locked", username)
        raise LoginLocked(int(account["locked_until"] - now + 0.999))
    if verify_password(password or "", account["password_hash"]):
        with transaction(conn):
            acq.record_login(conn, username, now)
        return public(get_account(conn, username))
    with transaction(conn):
        failures = acq.count_failure(conn, username)
        if failures >= max_failures:
            acq.lock_until(conn, username, now + lockout_seconds)
    if failures >= max_failures:
        log.warning("E_LOGIN_LOCKED: %s locked for %d s after %d failed logins", username, lockout_seconds, failures)
        raise LoginLocked(lockout_seconds)
    log.warning("E_LOGIN_FAILED: wrong password for %s (%d of %d)", username, failures, max_failures)
    raise LoginFailed()


def public(account: dict | None) -> dict | None:
    if account is None:
        return None
    return {k: v for k, v in account.items() if k != "password_hash"}


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(os.urandom(12).hex())
