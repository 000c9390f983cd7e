"""The administrator account: scrypt hashes, lock-out, the CLI."""

import pytest

from edgenode.node.web import accounts
from edgenode.core.errors import EdgenodeError


def test_hash_is_scrypt_salted_and_verifies():
    h1, h2 = accounts.hash_password("secret-pass"), accounts.hash_password("secret-pass")
    assert h1.startswith("scrypt$") and h1 != h2 and "secret-pass" not in h1
    assert accounts.verify_password("secret-pass", h1)
    assert not accounts.verify_password("secret-pasS", h1)
    assert not accounts.verify_password("secret-pass", "garbage")
    assert not accounts.verify_password("secret-pass", "bcrypt$1$2$3$4$5")


@pytest.mark.parametrize("bad", ["short", "", " leading space", "trailing ", "tab\there", "x" * 300])
def test_weak_passwords_refused_and_nothing_stored(conn, bad):
    with pytest.raises(EdgenodeError) as e:
        accounts.set_password(conn, bad)
    assert e.value.code == "E_WEAK_PASSWORD"
    assert not accounts.has_account(conn)


def test_lockout_after_max_failures_then_expires(conn):
    accounts.set_password(conn, "good password")
    kw = dict(max_failures=3, lockout_seconds=60)
    for _ in range(2):
        with pytest.raises(accounts.LoginFailed):
            accounts.login(conn, "admin", "wrong", now=1000, **kw)
    with pytest.raises(accounts.LoginLocked):
        accounts.login(conn, "admin", "wrong", now=1001, **kw)
    # While locked even the right password is refused.
    with pytest.raises(accounts.LoginLocked) as e:
        accounts.login(conn, "admin", "good password", now=1030, **kw)
    assert 0 < e.value.seconds <= 31
    assert accounts.login(conn, "admin", "good password", now=1062, **kw)["username"] == "admin"
    assert accounts.get_account(conn)["failures"] == 0


def test_success_resets_failure_count(conn):
    accounts.set_password(conn, "good password")
    kw = dict(max_failures=3, lockout_seconds=60)
    for _ in range(2):
        with pytest.raises(accounts.LoginFailed):
            accounts.login(conn, "admin", "wrong", **kw)
    accounts.login(conn, "admin", "good password", **kw)
    for _ in range(2):
        with pytest.raises(accounts.LoginFailed):
            accounts.login(conn, "admin", "wrong", **kw)


def test_unknown_user_fails_like_a_wrong_password(conn):
    accounts.set_password(conn, "good password")
    with pytest.raises(accounts.LoginFailed):
        accounts.login(conn, "root", "good password", max_failures=3, lockout_seconds=60)


def test_set_password_bumps_generation_and_unlocks(conn):
    a = accounts.set_password(conn, "first password")
    for _ in range(3):
        with pytest.raises(EdgenodeError):
            accounts.login(conn, "admin", "nope", max_failures=3, lockout_seconds=600)
    b = accounts.set_password(conn, "second password")
    assert b["generation"] == a["generation"] + 1 and "password_hash" not in b
    assert accounts.login(conn, "admin", "second password", max_failures=3, lockout_seconds=600)


def test_cli_set_password_unlock_status(runner, cfg, caplog):
    r = runner("admin", "set-password", "--password-stdin", input="cli password 1\n")
    assert r.exit_code == 0 and "password set" in r.output
    assert "cli password 1" not in r.output and "cli password 1" not in caplog.text
    r = runner("admin", "set-password", "--password-stdin", input="short\n")
    assert r.exit_code == 1 and "E_WEAK_PASSWORD" in r.output
    from edgenode.core.db import open_main
    c = open_main(cfg)
    try:
        assert accounts.login(c, "admin", "cli password 1", max_failures=5, lockout_seconds=60)
        for _ in range(2):
            with pytest.raises(EdgenodeError):
                accounts.login(c, "admin", "x", max_failures=2, lockout_seconds=600)
    finally:
        c.close()
    assert "locked" in runner("admin", "status").output
    assert runner("admin", "unlock").exit_code == 0
    assert "0 recent failed" in runner("admin", "status").output
    r = runner("admin", "unlock", "--user", "nobody")
    assert r.exit_code == 1 and "E_NO_ADMIN" in r.output


def test_cli_prompt_confirms(runner):
    r = runner("admin", "set-password", input="prompted pass\nprompted pass\n")
    assert r.exit_code == 0, r.output
    r = runner("admin", "dashboard", "--json")
    assert r.exit_code == 0 and '"storage"' in r.output
