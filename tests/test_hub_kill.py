"""The hub killed (SIGKILL) at random moments under upload: nothing acknowledged is lost, nothing doubled."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from edgenode.hub import registry, stats
from edgenode.hub.database import open_hub
from edgenode.hub.signing import sign_headers
from tests.conftest import make_config
from tests.helpers_sync import free_port, wait_port
from tests.helpers_hub import expected_totals, make_events, new_identity, seal

EDGENODE = str(Path(sys.executable).parent / "edgenode")


def _start(data_dir, port):
    proc = subprocess.Popen([EDGENODE, "--data-dir", str(data_dir), "hub", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", "--threads", "2"],
                            env={**os.environ, "EDGENODE_CONFIG": ""}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, timeout=30, proc=proc)
    return proc


def _upload(port, ident, no, data, sig):
    path = "/api/v1/batches"
    headers = {**sign_headers(ident, "POST", path, data, int(time.time())), "X-Edgenode-Batch-No": str(no),
               "X-Edgenode-Batch-Signature": sig, "Content-Type": "application/octet-stream"}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", path, body=data, headers=headers)
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def test_sigkill_during_ingest_loses_and_doubles_nothing(tmp_path):
    cfg = make_config(tmp_path / "hub")
    conn = open_hub(cfg)
    ident = new_identity()
    registry.enroll(conn, code=registry.new_code(conn), node_id=ident.node_id, public_key=ident.public_b64())
    conn.close()
    batches = [make_events(300, first_seq=1 + 300 * i, seed=i) for i in range(40)]
    sealed = {i + 1: seal(ident, i + 1, evs) for i, evs in enumerate(batches)}
    port = free_port()
    rnd = random.Random(7)
    pending = set(sealed)
    state = {"proc": _start(cfg.data_path, port), "kills": 0, "lost_answers": 0, "done": False}

    def killer():
        # Kills land while the uploader is mid-request: it never waits for them.
        while state["kills"] < 6 and not state["done"]:
            time.sleep(rnd.uniform(0.05, 0.4))
            os.killpg(state["proc"].pid, signal.SIGKILL)  # the whole gunicorn tree
            state["proc"].wait()
            state["kills"] += 1
            state["proc"] = _start(cfg.data_path, port)

    t = threading.Thread(target=killer)
    t.start()
    try:
        while pending or t.is_alive():
            for no in sorted(pending) or [1]:  # once all are in, keep resending batch 1 until the kills end
                try:
                    status, body = _upload(port, ident, no, *sealed[no])
                except (OSError, http.client.HTTPException):
                    state["lost_answers"] += 1
                    continue  # no answer: the node keeps the batch and sends it again
                assert status == 200, body
                pending.discard(no)
    finally:
        state["done"] = True
        t.join(60)
        os.killpg(state["proc"].pid, signal.SIGTERM)
        try:
            state["proc"].wait(30)
        except subprocess.TimeoutExpired:
            # A loaded machine can keep gunicorn in its graceful stop; what matters here is the
            # database after the kills, not how politely the last server leaves.
            os.killpg(state["proc"].pid, signal.SIGKILL)
            state["proc"].wait(10)
    kills = state["kills"]
    assert state["lost_answers"] > 0  # some kills did cut requests in flight
    assert kills == 6
    conn = open_hub(cfg, check=True)  # quick_check passes after the kills
    assert stats.totals(conn) == expected_totals(batches)
    node = registry.get_node(conn, ident.node_id)
    assert (node["events"], node["batches"], node["contiguous"]) == (12000, 40, 40)
    assert conn.execute("SELECT count(*) FROM hub_batches").fetchone()[0] == 40
    conn.close()
