import signal
import subprocess
import sys
import textwrap
import time

import pytest

from edgenode.core.db import migrations_state, open_main, open_volatile
from edgenode.core.errors import DatabaseError


def test_migrations_apply_once(cfg):
    c = open_main(cfg)
    first = migrations_state(c)
    c.close()
    c = open_main(cfg, check=True)
    assert migrations_state(c) == first
    assert {(m["area"], m["version"]) for m in first} >= {("catalog", 1), ("catalog", 2)}
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_corrupt_database_is_refused_clearly(cfg, runner):
    open_main(cfg).close()
    data = bytearray(cfg.db_path.read_bytes())
    # Trash pages after the header: the file still opens but fails quick_check.
    for i in range(4096 + 100, min(len(data), 4096 * 6), 7):
        data[i] = 0xA5
    cfg.db_path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        p = cfg.db_path.with_name(cfg.db_path.name + suffix)
        if p.exists():
            p.unlink()
    with pytest.raises(DatabaseError) as e:
        open_main(cfg, check=True)
    assert str(cfg.db_path) in e.value.message and "backup" in e.value.message
    r = runner("db", "check")
    assert r.exit_code == 1 and "E_DB_CORRUPT" in r.output


def test_not_a_database_is_refused(cfg):
    cfg.data_path.mkdir(parents=True)
    cfg.db_path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DatabaseError, match="backup"):
        open_main(cfg, check=True)


def test_volatile_database_is_rebuilt_when_corrupt(cfg):
    cfg.data_path.mkdir(parents=True)
    cfg.volatile_db_path.write_bytes(b"garbage" * 1000)
    c = open_volatile(cfg)
    assert c.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert list(cfg.data_path.glob("volatile.db.corrupt-*"))


KILLER = textwrap.dedent("""
    import sys, time
    from edgenode.core.config import load_config
    from edgenode.core.db import open_main, transaction
    cfg = load_config(env={}, overrides={"data_dir": sys.argv[1]})
    conn = open_main(cfg)
    conn.execute("CREATE TABLE IF NOT EXISTS t (i INTEGER, pad TEXT)")
    print("ready", flush=True)
    with transaction(conn):
        for i in range(2_000_000):
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 200))
    print("committed", flush=True)
""")


@pytest.mark.parametrize("delay", [0.3, 0.8, 1.5])
def test_sigkill_mid_transaction_reopens_consistent(cfg, delay):
    # A committed first batch must survive; the killed transaction must vanish whole.
    c = open_main(cfg)
    c.execute("CREATE TABLE t (i INTEGER, pad TEXT)")
    c.executemany("INSERT INTO t VALUES (?, 'committed')", [(i,) for i in range(1000)])
    c.close()
    p = subprocess.Popen([sys.executable, "-c", KILLER, str(cfg.data_path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    c = open_main(cfg, check=True)
    n = c.execute("SELECT count(*) FROM t").fetchone()[0]
    assert n in (1000, 1000 + 2_000_000)
    assert c.execute("SELECT count(*) FROM t WHERE pad = 'committed'").fetchone()[0] == 1000
    c.close()


def test_a_failed_commit_rolls_back_so_later_transactions_still_commit(tmp_path):
    """COMMIT can fail (SQLITE_BUSY) and leave the transaction open; the next transaction() must not
    join it as 'nested' and so never commit (found by tests/test_uplink_faults.py)."""
    import sqlite3

    from edgenode.core.db import connect, transaction
    from tests.helpers_faults import FaultyConnection

    path = tmp_path / "t.db"
    conn = connect(path)
    conn.execute("CREATE TABLE t (x)")
    faulty = FaultyConnection(conn, fail_at=3, fault="SQLITE_BUSY")  # BEGIN, INSERT, COMMIT
    with pytest.raises(sqlite3.OperationalError):
        with transaction(faulty):
            faulty.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
    other = connect(path)
    assert [r[0] for r in other.execute("SELECT x FROM t")] == [2]
    other.close()
    conn.close()
