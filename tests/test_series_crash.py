"""Crash safety of a series bundle with subtitles: SIGKILL the importer at points spread over every phase.

After each kill the node holds the series wholly or not at all (series row, episodes, their cleaned
WebVTT blobs), and a re-run completes it.  The kill machinery is tests/test_import_crash.py's.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.catalog import series_queries as sq
from edgenode.node.imports.pipeline import import_bundle
from tests.conftest import make_config
from tests.helpers_bundles import check_consistent, new_key, trust_key
from tests.helpers_series import SRT, series_bundle
from tests.test_import_crash import _run_child

PHASES = ("verify", "copy", "probe", "move", "moved", "commit", "committed")


def _state(conn, store) -> str:
    s = sq.get_series(conn, "pushi.opera")
    if s is None:
        assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
        return "old"
    eps = sq.episodes(conn, s["num"])
    assert [e["episode"] for e in eps] == [1, 2]
    for e in eps:
        [track] = sq.subtitles_of(conn, e["num"])
        assert store.path_for(track["sha256"]).read_bytes().startswith(b"WEBVTT\n\n")
    return "new"


@pytest.fixture
def work():
    root = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None, prefix="edgenode-i19-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_sigkill_during_a_series_import_leaves_all_or_nothing(work):
    sk = new_key(work)
    bundle = series_bundle(work, sk, n=2, video_seconds=2, subtitles=SRT)
    base = work / "template"
    conn = open_main(make_config(base, store__free_space_floor_mb=0))
    trust_key(conn, sk, "pushi")
    conn.close()
    shutil.copytree(base, work / "count")
    status = _run_child(make_config(work / "count", store__free_space_floor_mb=0), bundle, 0, work / "count.json",
                        64 * 1024)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    import json
    labels = json.loads((work / "count.json").read_text())["labels"]
    # One kill at the first point of each phase: before the copy, while staging (subtitles are staged
    # after the probe), moving into the store, inside the commit's transaction, and after it.
    points = sorted(labels.index(p) + 1 for p in PHASES)
    seen = {"old": 0, "new": 0}
    for k in points:
        dest = work / f"k{k}"
        shutil.copytree(base, dest)
        cfg = make_config(dest, store__free_space_floor_mb=0)
        status = _run_child(cfg, bundle, k, work / "unused.json", 64 * 1024)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, labels[k - 1])
        conn, store = open_main(cfg), open_store(cfg)
        try:
            check_consistent(conn, store)
            seen[_state(conn, store)] += 1
            assert import_bundle(cfg, conn, store, bundle, source="rerun").result in ("imported", "unchanged")
            assert _state(conn, store) == "new"
            check_consistent(conn, store)
        finally:
            conn.close()
        shutil.rmtree(dest)
    assert seen["old"] and seen["new"], seen
