"""Key files made once (edgenode/core/keyfile.py): racing processes agree, nothing half-written is ever used."""

from __future__ import annotations

import multiprocessing
import os
import stat

import pytest

from edgenode.core.errors import EdgenodeError
from edgenode.core.keyfile import read_or_create


def _at_the_barrier(fn, args, barrier, out):
    barrier.wait()
    out.put(fn(*args))


def _together(n: int, fn, *args) -> tuple[list, list[int]]:
    """``fn(*args)`` in ``n`` forked processes released at the same moment: (results, exit codes)."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_at_the_barrier, args=(fn, args, barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    return results, [p.exitcode for p in procs]


def test_processes_starting_together_agree_on_one_key(tmp_path):
    for round_ in range(5):  # several rounds: the race is won by a different process each time
        path = tmp_path / f"r{round_}" / "secret_key"
        results, codes = _together(8, read_or_create, path)
        keys = set(results)
        for code in codes:
            assert code == 0
        assert keys == {path.read_text()} and len(path.read_text()) == 64
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert os.listdir(path.parent) == ["secret_key"]  # no temporary file left behind


@pytest.mark.parametrize("content", ["", "abc", "zz" * 32, "0" * 63, "0" * 65, "\x00" * 64, "é" * 32])
def test_a_damaged_key_is_refused_or_replaced_never_used(tmp_path, content, caplog):
    path = tmp_path / "k"
    path.write_text(content)
    with pytest.raises(EdgenodeError) as e:
        read_or_create(path)
    assert e.value.code == "E_KEY_DAMAGED"
    assert path.read_text() == content  # refusing changes nothing
    new = read_or_create(path, replace_damaged=True)
    assert len(new) == 64 and new != content and path.read_text() == new
    assert "W_KEY_REPLACED" in caplog.text
    assert read_or_create(path) == new  # and it stays


def test_a_crash_leftover_temporary_file_is_ignored(tmp_path):
    (tmp_path / ".k.abc123").write_text("0" * 10)  # power cut after mkstemp, before the link
    key = read_or_create(tmp_path / "k")
    assert len(key) == 64 and read_or_create(tmp_path / "k") == key


def test_the_portal_survives_a_torn_session_key(tmp_path):
    """A session key file emptied by a power cut (older versions wrote in place) no longer stops the portal."""
    from edgenode.node.app import create_app
    from tests.conftest import make_config
    cfg = make_config(tmp_path / "data")
    cfg.data_path.mkdir(parents=True)
    (cfg.data_path / "secret_key").write_text("")
    app = create_app(cfg)
    assert len(app.secret_key) == 64
    assert app.test_client().get("/admin/login").status_code == 200


def _identity(cfg):
    from edgenode.core.identity import load_or_create
    ident = load_or_create(cfg)
    return ident.node_id, ident.public_b64()


def test_jobs_starting_together_on_a_new_node_share_one_identity(tmp_path):
    from tests.conftest import make_config
    cfg = make_config(tmp_path / "data")
    seen = set(_together(6, _identity, cfg)[0])
    assert len(seen) == 1  # one node id, one key
