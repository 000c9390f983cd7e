"""Scheduled jobs in their own processes (edgenode/core/jobproc.py): results, config hand-over, deaths, stopping."""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from edgenode.core import jobproc, jobs
from edgenode.core.db import open_volatile
from tests.conftest import make_config
from tests.helpers_sync import ROOT


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch):
    # The child is a fresh interpreter: let it import tests.helpers_jobproc.
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    jobproc._stopping.clear()
    yield
    jobproc._stopping.clear()


def test_the_child_gets_the_parents_effective_config_and_returns_its_result(tmp_path):
    windows = [{"start": "19:00", "end": "23:00", "days": ["mon", "fri"]}]
    cfg = make_config(tmp_path / "data", sync__windows=windows, web__secret_key="s3cret-value", log__level="ERROR")
    out = jobproc.run(cfg, "tests.helpers_jobproc:echo", "a", 2)
    assert out["data_dir"] == str(tmp_path / "data") and out["args"] == ["a", 2]
    assert out["log_level"] == "ERROR" and out["secret"] == "s3cret-value"
    assert out["pid"] != os.getpid() and not psutil.pid_exists(out["pid"])  # a separate process, and gone


def test_a_crashing_job_is_reported_not_raised(cfg):
    out = jobproc.run(cfg, "tests.helpers_jobproc:crash")
    assert out["state"] == "failed" and out["message"].startswith("E_JOB_DIED") and "exit status 1" in out["message"]


def _wait_for(path, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) == 2:
            return [int(x) for x in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_a_child_killed_mid_run_leaves_no_running_row(cfg, tmp_path):
    pidfile = tmp_path / "pids"
    result = {}
    t = threading.Thread(target=lambda: result.update(
        out=jobproc.run(cfg, "tests.helpers_jobproc:hang_with_a_grandchild", "pull", str(pidfile), kinds=("pull",))))
    t.start()
    child, grandchild = _wait_for(pidfile)
    v = open_volatile(cfg)
    assert jobs.recent(v, "pull")[0]["state"] == "running"
    os.kill(child, signal.SIGKILL)  # the OOM killer, or a bug in a C extension
    t.join(20)
    assert not t.is_alive()
    assert result["out"]["state"] == "failed" and "signal 9" in result["out"]["message"]
    row = jobs.recent(v, "pull")[0]
    assert row["state"] == "failed" and row["message"].startswith("E_JOB_DIED") and row["finished_at"]
    v.close()
    _gone(grandchild)  # the dead child's rsync/ffmpeg was stopped too


def _gone(pid, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running")


def test_stop_all_ends_the_child_and_its_grandchild(cfg, tmp_path):
    pidfile = tmp_path / "pids"
    t = threading.Thread(target=jobproc.run, args=(cfg, "tests.helpers_jobproc:hang_with_a_grandchild", "pull",
                                                   str(pidfile)), kwargs={"kinds": ("pull",)})
    t.start()
    child, grandchild = _wait_for(pidfile)
    assert jobproc.stop_all(timeout=10) == 1
    t.join(10)
    assert not t.is_alive()
    for pid in (child, grandchild):  # SIGTERM reached the whole session: rsync/ffmpeg do not outlive the scheduler
        _gone(pid)
    # once stopping, no new child starts; an admin action waiting for one is told so
    assert jobproc.run(cfg, "tests.helpers_jobproc:echo")["state"] == "skipped"
    from edgenode.core.errors import EdgenodeError
    with pytest.raises(EdgenodeError) as e:
        jobproc.call_or_raise(cfg, "tests.helpers_jobproc:echo")
    assert e.value.code == "E_STOPPING"


def test_a_child_of_another_version_refuses_the_config(cfg):
    from edgenode.core.config import Config, ConfigError
    doc = cfg.to_json().replace('"data_dir"', '"data_dir_renamed"')
    with pytest.raises(ConfigError):
        Config.from_json(doc)
    assert Config.from_json(cfg.to_json()).as_dict(masked=False) == cfg.as_dict(masked=False)


def test_call_or_raise_brings_a_refusal_back_whole(cfg):
    from edgenode.core.errors import EdgenodeError
    with pytest.raises(EdgenodeError) as e:
        jobproc.call_or_raise(cfg, "tests.helpers_jobproc:refuse")
    assert (e.value.code, e.value.message, e.value.zh, e.value.status) == ("E_TEST_REFUSED", "not today", "今天不行", 409)
    with pytest.raises(EdgenodeError) as e:
        jobproc.call_or_raise(cfg, "tests.helpers_jobproc:crash")
    assert e.value.code == "E_JOB_DIED"
    assert jobproc.call_or_raise(cfg, "tests.helpers_jobproc:echo", 1)["args"] == [1]
