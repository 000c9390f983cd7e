"""Scheduled jobs run each in a child process of the scheduler.

Why a process per run rather than the scheduler's own threads:

* **Memory.**  A pull or an import loads requests, cryptography and the
  import pipeline, and an import of a large stick peaks near 90 MB.  In a
  thread that memory stays with the scheduler for good; a child gives it all
  back when the run ends, so the idle scheduler holds only APScheduler and the
  config (~25 MB instead of ~45 MB; the village PC has the web workers beside it).
* **Containment.**  A crash, a leak or a hang in one run dies with its process;
  the scheduler keeps its timetable.

The child is ``python -m edgenode.core.jobproc``: it reads ``{"config", "target",
"args"}`` as JSON on stdin (the parent's effective config, so a test's or an
override's values reach the child unchanged), calls ``target`` (a
``module:function`` taking the config first) and writes the function's JSON
result on stdout.  Its log lines go to the parent's stderr (the journal).

Each child starts its own session, so the scheduler stopping can send SIGTERM to
the child *and its rsync* together (rsync keeps its partial files on SIGTERM).
A child that dies by a signal or a power cut leaves its ``jobs`` row
``running``; :func:`run` marks such rows ``failed`` once it sees the child end.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

_children: set[subprocess.Popen] = set()
_children_lock = threading.Lock()
_stopping = threading.Event()


def run(cfg, target: str, *args, kinds: tuple[str, ...] = ()):
    """Run ``target(cfg, *args)`` in a child process; returns its (JSON) result, or
    ``{"state": "failed", "message": ...}`` when the child died.

    ``kinds``: the job kinds the target records in the ``jobs`` table, so a
    child that dies mid-run does not leave them ``running`` forever.
    """
    if _stopping.is_set():
        return {"state": "skipped", "message": "E_STOPPING: the scheduler is stopping",
                "error": {"code": "E_STOPPING", "message": "the scheduler is stopping", "zh": "服务正在停止，请稍后再试。",
                          "status": 503}}
    request = json.dumps({"config": cfg.to_json(), "target": target, "args": list(args)}, ensure_ascii=False)
    started = time.time()
    child = subprocess.Popen([sys.executable, "-m", "edgenode.core.jobproc"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=None, start_new_session=True)
    with _children_lock:
        _children.add(child)
    try:
        out, _ = child.communicate(request.encode())
    finally:
        with _children_lock:
            _children.discard(child)
    if child.returncode == 0:
        try:
            return json.loads(out)
        except ValueError:
            return _failed("E_JOB_ANSWER", "the job process wrote no result")
    _signal_group(child, signal.SIGTERM)  # its rsync or ffmpeg must not run on without it
    how = (f"signal {-child.returncode}" if child.returncode < 0 else f"exit status {child.returncode}")
    out = _failed("E_JOB_DIED", f"the job process ended with {how}")
    log.warning("job %s%s: %s", target, args, out["message"])
    if kinds:
        _abandon(cfg, kinds, started, out["message"])
    return out


def _failed(code: str, message: str) -> dict:
    return {"state": "failed", "message": f"{code}: {message}",
            "error": {"code": code, "message": message, "zh": "操作没有完成，请稍后再试。", "status": 500}}


def call_or_raise(cfg, target: str, *args):
    """``run`` for an admin action that waits for its answer: a refusal in the child is raised here
    as the same ``EdgenodeError`` (code, message, Chinese text); a dead child as ``E_JOB_DIED``.
    The target must not return a dict with an ``error`` key of its own."""
    from edgenode.core.errors import EdgenodeError

    out = run(cfg, target, *args)
    err = out.get("error") if isinstance(out, dict) else None
    if isinstance(err, dict):  # the child's refusal, or this module's own E_JOB_DIED / E_STOPPING
        raise EdgenodeError(err["code"], err["message"], zh=err.get("zh"), status=err.get("status") or 500)
    return out


def _abandon(cfg, kinds, since: float, message: str) -> None:
    # A row of these kinds still 'running' and started after the child did is the dead child's.
    # (A `sync now` of the same kind started by hand in the same seconds would be marked too: rare
    # and harmless, the row only feeds the admin page.)
    from edgenode.core import jobs_queries
    from edgenode.core.db import open_volatile

    vconn = open_volatile(cfg)
    try:
        jobs_queries.fail_running(vconn, kinds, since - 1, message, time.time())
    finally:
        vconn.close()


def stop_all(timeout: float = 20.0) -> int:
    """SIGTERM every running child's session (the child and its rsync); SIGKILL what is left after ``timeout``."""
    _stopping.set()
    with _children_lock:
        children = list(_children)
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
    return len(children)


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def main() -> int:
    from edgenode.core.config import Config

    # The result goes out on a private copy of stdout; fd 1 itself becomes stderr, so an rsync or
    # ffmpeg started by the job cannot hold the parent's pipe open after this process has died.
    result_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    request = json.loads(sys.stdin.buffer.read())
    cfg = Config.from_json(request["config"])
    level = getattr(logging, cfg["log.level"])
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from edgenode.core import registry

    fn = registry.resolve(request["target"])
    from edgenode.core.errors import EdgenodeError
    try:
        result = fn(cfg, *request["args"])
    except EdgenodeError as e:  # a refusal with its stable code and Chinese text, for call_or_raise
        result = {"state": "failed", "message": f"{e.code}: {e.message}",
                  "error": {"code": e.code, "message": e.message, "zh": e.zh, "status": e.status}}
    result_out.write(json.dumps(result, ensure_ascii=False, default=str))
    result_out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
