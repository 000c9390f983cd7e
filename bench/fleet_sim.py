"""Fleet simulator: N simulated village nodes against one hub on this machine (issue 7).

Every node has its own Ed25519 key and is enrolled with its own one-time code.
The hub runs as in production: ``edgenode hub serve`` (gunicorn, gthread workers)
on loopback.  Client processes drive the nodes on a compressed clock: each node
heartbeats and uploads a sealed, signed batch once per simulated interval
(default 15 minutes); when the hub falls behind, clients send as fast as it
answers, so the figures are the hub's sustained capacity.

Phases: heartbeats only, batches only, then both mixed.  Reports requests/s,
events/s, p50/p95 latency and the hub's RSS (master + workers), and checks at the
end that the hub's stored event count equals what the clients had acknowledged.

    .venv/bin/python bench/fleet_sim.py                    # 2,000 nodes
    .venv/bin/python bench/fleet_sim.py --nodes 20 --seconds 2   # smoke
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers_sync import free_port, wait_port  # noqa: E402


def enroll_fleet(data_dir: Path, n: int) -> list[tuple[str, bytes]]:
    """Enrol n nodes through the registry (one-time code each); returns (node_id, raw private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgenode.core.config import load_config
    from edgenode.core.db import transaction
    from edgenode.hub import registry
    from edgenode.hub.database import open_hub
    from edgenode.core.identity import Identity

    cfg = load_config(env={}, overrides={"data_dir": str(data_dir)})
    conn = open_hub(cfg)
    out = []
    with transaction(conn):  # one commit for the whole fleet: set-up, not what is measured
        for i in range(n):
            key = Ed25519PrivateKey.generate()
            ident = Identity(uuid.uuid4().hex, key)
            registry.enroll(conn, code=registry.new_code(conn, township=f"镇{i % 20:02d}"), node_id=ident.node_id,
                            public_key=ident.public_b64(), name=f"模拟村{i:04d}")
            out.append((ident.node_id, key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                         serialization.NoEncryption())))
    conn.close()
    return out


def hub_totals(data_dir: Path) -> dict:
    from edgenode.core.db import connect
    conn = connect(data_dir / "hub.db")
    b, e = conn.execute("SELECT coalesce(sum(batches), 0), coalesce(sum(events), 0) FROM hub_nodes").fetchone()
    hb = conn.execute("SELECT count(*) FROM hub_latest").fetchone()[0]
    conn.close()
    return {"batches": b, "events": e, "nodes_with_heartbeat": hb}


# -- client side -------------------------------------------------------------------------------------

def _client(idx: int, port: int, nodes: list, phase: str, seconds: float, interval: float, events_per_batch: int,
            first_batch: int, rounds_budget: int, ready, go, start_value, q) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgenode.hub.signing import request_message
    from edgenode.core.identity import Identity
    from edgenode.protocol.usage_batch import seal_bytes, sign_batch

    import base64

    idents = [Identity(nid, Ed25519PrivateKey.from_private_bytes(raw)) for nid, raw in nodes]
    rnd = random.Random(idx)
    # Pre-seal one batch per node per round the phase can possibly use (sealing is the node's cost).
    rounds = min(int(seconds / interval) + 2, rounds_budget) if phase != "heartbeat" else 0
    batches: dict[tuple[int, int], tuple[bytes, str, int]] = {}
    base_t = 1764000000.0
    for r in range(rounds):
        for i, ident in enumerate(idents):
            no = first_batch + r
            evs = []
            for s in range(events_per_batch):
                k = rnd.choice(("view", "play_start", "progress", "progress", "play_end"))
                c = rnd.choice(("sannong", "pushi", "xinchengshi", "shequ"))
                evs.append({"s": no * events_per_batch + s, "t": base_t + r * 900 + s, "k": k,
                            "m": f"t{rnd.randrange(30)}", "r": f"{c}.res{rnd.randrange(40)}", "c": c,
                            "d": 15.0 if k == "progress" else 0.0, "x": None})
            data = seal_bytes(ident.node_id, no, evs, first_seq=evs[0]["s"], last_seq=evs[-1]["s"],
                              sealed_at=base_t + r * 900)
            batches[(i, r)] = (data, sign_batch(ident, no, data), events_per_batch)
    conns: dict[int, http.client.HTTPConnection] = {}

    def post(i, path, body, extra):
        ts = str(int(time.time()))
        sig = base64.b64encode(idents[i].sign(request_message("POST", path, ts, body))).decode()
        headers = {"X-Edgenode-Node": idents[i].node_id, "X-Edgenode-Timestamp": ts, "X-Edgenode-Signature": sig,
                   "Content-Length": str(len(body)), **extra}
        slot = i % 8  # a few keep-alive connections per client process
        for attempt in range(3):
            c = conns.get(slot)
            if c is None:
                c = conns[slot] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                c.request("POST", path, body=body, headers=headers)
                resp = c.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    c.close()
                    conns.pop(slot, None)
                return resp.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                c.close()
                conns.pop(slot, None)
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    # Each node is due at a staggered offset within every interval of the compressed clock.
    due = [(interval * (j / max(len(idents), 1)), j) for j in range(len(idents))]
    rounds_done = [0] * len(idents)
    lat_hb, lat_b, errors = [], [], []
    stored_events = stored = dup = 0
    last_batch_at = None
    ready.put(idx)
    go.wait()
    start_at = start_value.value
    due = [(start_at + t, j) for t, j in due]
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    k = 0
    while True:
        now = time.time()
        if now >= end:
            break
        t_due, j = due[k]
        if t_due > now:
            time.sleep(min(t_due - now, end - now))
            continue
        r = rounds_done[j]
        if phase in ("heartbeat", "mixed"):
            snap = {"node_id": idents[j].node_id, "version": "0.1.0", "at": time.time(), "boot_id": "sim",
                    "uptime": 3600 + r * 900, "disk": {"total": 100, "used": 40, "free": 60, "percent": 40.0 + r % 5},
                    "cpu_percent": 10.0, "mem_percent": 30.0, "catalog": {"resources": 100, "channels": {"county": 3}},
                    "outbox": {"batches": 0, "bytes": 0}, "last_pull": time.time(), "last_uplink": time.time(),
                    "clock": {"ntp_synced": True, "wall": time.time(), "monotonic": 1.0, "boot_count": 1}}
            t0 = time.perf_counter()
            status, body = post(j, "/api/v1/heartbeat", json.dumps(snap).encode(), {"Content-Type": "application/json"})
            lat_hb.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(("heartbeat", status, body[:200].decode(errors="replace")))
        if phase == "batch" and (j, r) not in batches and r >= rounds:
            if all(x >= rounds for x in rounds_done):
                break  # every pre-sealed batch is delivered
            rounds_done[j] += 1
            k = (k + 1) % len(due)
            continue
        if phase in ("batch", "mixed") and (j, r) in batches:
            data, sig, n = batches[(j, r)]
            t0 = time.perf_counter()
            status, body = post(j, "/api/v1/batches", data, {"Content-Type": "application/octet-stream",
                                                             "X-Edgenode-Batch-No": str(first_batch + r),
                                                             "X-Edgenode-Batch-Signature": sig})
            lat_b.append(time.perf_counter() - t0)
            last_batch_at = time.time()
            if status == 200:
                ans = json.loads(body)
                if ans["status"] == "stored":
                    stored += 1
                    stored_events += n
                else:
                    dup += 1
            else:
                errors.append(("batch", status, body[:200].decode(errors="replace")))
        rounds_done[j] += 1
        due[k] = (t_due + interval, j)
        k = (k + 1) % len(due)
    q.put({"lat_hb": lat_hb, "lat_b": lat_b, "errors": errors[:20], "n_errors": len(errors), "stored": stored,
           "duplicate": dup, "stored_events": stored_events, "rounds": max(rounds_done) if rounds_done else 0,
           "start_at": start_at, "last_batch_at": last_batch_at})


def _pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def _rss(pid: int) -> float:
    import psutil
    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
        return sum(x.memory_info().rss for x in procs) / 2 ** 20
    except psutil.Error:
        return 0.0


def _cpu(pid: int) -> float:
    """User + system CPU seconds of the hub (master + workers) so far."""
    import psutil
    try:
        p = psutil.Process(pid)
        return sum(sum(x.cpu_times()[:2]) for x in [p, *p.children(recursive=True)])
    except psutil.Error:
        return 0.0


def run_phase(port, hub_pid, fleet, phase, *, seconds, interval, events_per_batch, first_batch, clients,
              max_events) -> dict:
    ctx = mp.get_context("fork")
    q, ready, go, start_value = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    parts = [fleet[i::clients] for i in range(clients)]
    rounds_budget = max(1, max_events // max(1, len(fleet) * events_per_batch))
    procs = [ctx.Process(target=_client, args=(i, port, parts[i], phase, seconds, interval, events_per_batch,
                                               first_batch, rounds_budget, ready, go, start_value, q))
             for i in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:  # sealing the batches is the nodes' work, done before the clock starts
        ready.get(timeout=900)
    start_at = start_value.value = time.time() + 0.5
    go.set()
    rss = []
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = _cpu(hub_pid)
    while time.time() < start_at + seconds:
        rss.append(_rss(hub_pid))
        time.sleep(0.5)
    results = [q.get(timeout=600) for _ in procs]
    hub_cpu = _cpu(hub_pid) - cpu0
    for p in procs:
        p.join(60)
    lat_hb = [x for r in results for x in r["lat_hb"]]
    lat_b = [x for r in results for x in r["lat_b"]]
    # In the batch phase the clients may deliver every pre-sealed batch before the time is up:
    # rates are then over the time to the last answer, not over idle seconds.
    done = [r["last_batch_at"] for r in results if r["last_batch_at"]]
    b_seconds = min(seconds, max(done) - start_at) if phase == "batch" and done else seconds
    out = {"phase": phase, "seconds": seconds, "heartbeats": len(lat_hb), "batches": len(lat_b),
           "heartbeats_per_s": len(lat_hb) / seconds, "batches_per_s": len(lat_b) / b_seconds,
           "events_per_s": sum(r["stored_events"] for r in results) / b_seconds, "batch_seconds": b_seconds,
           "stored_events": sum(r["stored_events"] for r in results),
           "stored": sum(r["stored"] for r in results), "duplicate": sum(r["duplicate"] for r in results),
           "errors": sum(r["n_errors"] for r in results), "error_samples": [e for r in results for e in r["errors"]][:5],
           "hb_p50_ms": (_pct(lat_hb, 50) or 0) * 1000, "hb_p95_ms": (_pct(lat_hb, 95) or 0) * 1000,
           "batch_p50_ms": (_pct(lat_b, 50) or 0) * 1000, "batch_p95_ms": (_pct(lat_b, 95) or 0) * 1000,
           "hub_rss_mb_max": max(rss) if rss else _rss(hub_pid),
           "rounds": max(r["rounds"] for r in results), "hub_cpu_s": hub_cpu}
    # Load-independent figures: the hub's own CPU per request, and what two cores would carry
    # with nothing else running (the clients share these cores during the run).
    if phase == "heartbeat" and lat_hb:
        out["hub_cpu_ms_per_heartbeat"] = hub_cpu / len(lat_hb) * 1000
        out["capacity_heartbeats_per_s_2_cores"] = 2 * len(lat_hb) / hub_cpu if hub_cpu else None
    if phase == "batch" and out["stored_events"]:
        out["hub_cpu_us_per_event"] = hub_cpu / out["stored_events"] * 1e6
        out["capacity_events_per_s_2_cores"] = 2 * out["stored_events"] / hub_cpu if hub_cpu else None
    return out


def start_hub(data_dir: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "EDGENODE_CONFIG": "", "EDGENODE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "edgenode"), "--data-dir", str(data_dir), "hub", "serve",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                             "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        wait_port(port, timeout=30, proc=proc)
    except RuntimeError:  # it exited: say why
        raise RuntimeError("hub did not start: " + proc.stderr.read().decode()) from None
    return proc


def wrk_heartbeats(port: int, fleet: list, seconds: float, connections: int, hub_pid: int, workdir: Path) -> dict:
    """Signed heartbeats from every node, driven by wrk (C, next to no client CPU).

    Each node's heartbeat is signed once and replayed: the hub records timestamps but never
    refuses on them (village clocks), so every replay is a full verify + store.
    """
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgenode.hub.signing import request_message
    from edgenode.core.identity import Identity

    def lua(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    entries = []
    for nid, raw in fleet:
        ident = Identity(nid, Ed25519PrivateKey.from_private_bytes(raw))
        now = time.time()
        body = json.dumps({"node_id": nid, "version": "0.1.0", "at": now, "boot_id": "sim", "uptime": 3600,
                           "disk": {"total": 100, "used": 40, "free": 60, "percent": 40.0}, "cpu_percent": 10.0,
                           "mem_percent": 30.0, "catalog": {"resources": 100, "channels": {"county": 3}},
                           "outbox": {"batches": 0, "bytes": 0}, "last_pull": now, "last_uplink": now,
                           "clock": {"ntp_synced": True, "wall": now, "monotonic": 1.0, "boot_count": 1}})
        ts = str(int(now))
        sig = base64.b64encode(ident.sign(request_message("POST", "/api/v1/heartbeat", ts, body.encode()))).decode()
        entries.append(f"{{{lua(nid)},{lua(ts)},{lua(sig)},{lua(body)}}}")
    script = workdir / "heartbeats.lua"
    script.write_text(
        "local reqs = {" + ",\n".join(entries) + "}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #reqs + 1\n"
        "  local r = reqs[i]\n"
        "  return wrk.format('POST', '/api/v1/heartbeat', {['Content-Type'] = 'application/json',\n"
        "    ['X-Edgenode-Node'] = r[1], ['X-Edgenode-Timestamp'] = r[2], ['X-Edgenode-Signature'] = r[3]}, r[4])\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('RESULT %d %d %d %f %f %f\\n', summary.requests, summary.errors.status,\n"
        "    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,\n"
        "    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000))\n"
        "end\n")
    cpu0 = _cpu(hub_pid)
    rss = _rss(hub_pid)
    p = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s", "-s", str(script),
                        f"http://127.0.0.1:{port}"], capture_output=True, text=True)
    hub_cpu = _cpu(hub_pid) - cpu0
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError("wrk failed: " + p.stdout + p.stderr)
    n, bad_status, sock_errors, dur, p50, p95 = line.split()[1:]
    n, dur = int(n), float(dur)
    return {"phase": "heartbeat-wrk", "seconds": dur, "heartbeats": n, "heartbeats_per_s": n / dur,
            "hb_p50_ms": float(p50), "hb_p95_ms": float(p95), "errors": int(bad_status) + int(sock_errors),
            "error_samples": [], "hub_rss_mb_max": max(rss, _rss(hub_pid)), "hub_cpu_s": hub_cpu,
            "hub_cpu_ms_per_heartbeat": hub_cpu / n * 1000 if n else None,
            "capacity_heartbeats_per_s_2_cores": 2 * n / hub_cpu if hub_cpu else None,
            "batches": 0, "stored_events": 0, "connections": connections}


def _seal_chunk(args):
    """Seal and sign one client's share of batches (run in a worker process)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edgenode.hub.signing import request_message
    from edgenode.core.identity import Identity
    from edgenode.protocol.usage_batch import seal_bytes, sign_batch

    nodes, rounds, per_batch, first_batch, seed = args
    rnd = random.Random(seed)
    out = []
    for nid, raw in nodes:
        ident = Identity(nid, Ed25519PrivateKey.from_private_bytes(raw))
        for r in range(rounds):
            no = first_batch + r
            evs = []
            for k in range(per_batch):
                kind = rnd.choice(("view", "play_start", "progress", "progress", "play_end"))
                c = rnd.choice(("sannong", "pushi", "xinchengshi", "shequ"))
                evs.append({"s": no * per_batch + k, "t": 1764000000.0 + r * 900 + k, "k": kind,
                            "m": f"t{rnd.randrange(30)}", "r": f"{c}.res{rnd.randrange(40)}", "c": c,
                            "d": 15.0 if kind == "progress" else 0.0, "x": None})
            data = seal_bytes(nid, no, evs, first_seq=evs[0]["s"], last_seq=evs[-1]["s"], sealed_at=1764000000.0)
            ts = str(int(time.time()))
            req_sig = base64.b64encode(ident.sign(request_message("POST", "/api/v1/batches", ts, data))).decode()
            out.append((nid, no, ts, req_sig, sign_batch(ident, no, data), data))
    return out


def wrk_batches(port: int, fleet: list, seconds: float, connections: int, hub_pid: int, workdir: Path, *,
                per_batch: int, max_events: int, first_batch: int, data_dir: Path) -> dict:
    """Distinct signed batches from every node, driven by wrk: events/s the hub stores."""
    rounds = max(1, max_events // (len(fleet) * per_batch))
    chunks = [(fleet[i::4], rounds, per_batch, first_batch, i) for i in range(4)]
    with mp.get_context("fork").Pool(2) as pool:
        sealed = [b for part in pool.map(_seal_chunk, chunks) for b in part]
    sealed.sort(key=lambda b: (b[1], b[0]))  # round by round, as nodes would send them
    blob, index = workdir / "batches.bin", workdir / "batches.idx"
    offset = 0
    with open(blob, "wb") as fb, open(index, "w") as fi:
        for nid, no, ts, req_sig, batch_sig, data in sealed:
            fb.write(data)
            fi.write(f"{offset} {len(data)} {nid} {no} {ts} {req_sig} {batch_sig}\n")
            offset += len(data)
    script = workdir / "batches.lua"
    script.write_text(f"""
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {{}}
local n = 0
local i = 0
init = function(args)
  local nthreads = 2
  local f = io.open("{blob}", "rb")
  local k = 0
  for line in io.lines("{index}") do
    if k % nthreads == id then
      local off, len, nid, no, ts, rsig, bsig = line:match("(%d+) (%d+) (%S+) (%d+) (%d+) (%S+) (%S+)")
      f:seek("set", tonumber(off))
      n = n + 1
      reqs[n] = wrk.format("POST", "/api/v1/batches", {{["Content-Type"] = "application/octet-stream",
        ["X-Edgenode-Node"] = nid, ["X-Edgenode-Timestamp"] = ts, ["X-Edgenode-Signature"] = rsig,
        ["X-Edgenode-Batch-No"] = no, ["X-Edgenode-Batch-Signature"] = bsig}}, f:read(tonumber(len)))
    end
    k = k + 1
  end
  f:close()
end
request = function()
  i = i + 1
  if i > n then i = n end  -- out of fresh batches: resend the last (answered "duplicate")
  return reqs[i]
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f %f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000))
end
""")
    before = hub_totals(data_dir)["events"]
    cpu0 = _cpu(hub_pid)
    p = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{int(seconds)}s", "--timeout", "30s",
                        "-s", str(script), f"http://127.0.0.1:{port}"], capture_output=True, text=True)
    time.sleep(1.0)  # requests in flight when wrk stopped still commit
    hub_cpu = _cpu(hub_pid) - cpu0
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")), None)
    if line is None:
        raise RuntimeError("wrk failed: " + p.stdout + p.stderr)
    n, bad_status, sock_errors, dur, p50, p95 = line.split()[1:]
    stored = hub_totals(data_dir)["events"] - before
    dur = float(dur)
    return {"phase": "batch-wrk", "seconds": dur, "batch_seconds": dur, "heartbeats": 0, "batches": int(n),
            "batches_per_s": int(n) / dur, "stored_events": stored, "events_per_s": stored / dur,
            "exhausted": stored >= len(sealed) * per_batch, "sealed_events": len(sealed) * per_batch,
            "batch_p50_ms": float(p50), "batch_p95_ms": float(p95), "errors": int(bad_status) + int(sock_errors),
            "error_samples": [], "hub_rss_mb_max": _rss(hub_pid), "hub_cpu_s": hub_cpu,
            "hub_cpu_us_per_event": hub_cpu / stored * 1e6 if stored else None,
            "capacity_events_per_s_2_cores": 2 * stored / hub_cpu if hub_cpu else None,
            "rounds": rounds, "acked_stored": stored}


def baseline(port: int, n: int = 2000) -> float:
    """Requests/s of the cheapest refused request (unsigned POST → 401) on the same hub: the HTTP floor."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    for _ in range(n):
        c.request("GET", "/login")
        c.getresponse().read()
    return n / (time.perf_counter() - t0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0, help="Real seconds per phase.")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="Real seconds per simulated 15-minute reporting interval (compressed clock).")
    ap.add_argument("--events-per-batch", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--clients", type=int, default=2, help="Client processes.")
    ap.add_argument("--phases", default="heartbeat-wrk,batch-wrk,heartbeat,batch,mixed",
                    help="heartbeat-wrk (wrk replays each node's signed heartbeat), heartbeat, batch, mixed.")
    ap.add_argument("--wrk-connections", type=int, default=32, help="wrk connections for heartbeats.")
    ap.add_argument("--wrk-batch-connections", type=int, default=8, help="wrk connections for batches.")
    ap.add_argument("--max-events", type=int, default=3_000_000, help="Events pre-sealed per phase.")
    ap.add_argument("--baseline-requests", type=int, default=2000)
    ap.add_argument("--keep", action="store_true", help="Keep the hub data directory.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="fleet-sim-"))
    t0 = time.time()
    fleet = enroll_fleet(data_dir, args.nodes)
    enrol_s = time.time() - t0
    port = free_port()
    hub = start_hub(data_dir, port, args.workers, args.threads)
    results = {"nodes": args.nodes, "enrol_seconds": round(enrol_s, 2), "cpus": os.cpu_count(), "phases": [],
               "loadavg_before": os.getloadavg()}
    try:
        results["baseline_login_page_per_s"] = baseline(port, args.baseline_requests)
        first_batch = 1
        for phase in args.phases.split(","):
            if phase == "heartbeat-wrk":
                results["phases"].append(wrk_heartbeats(port, fleet, args.seconds, args.wrk_connections, hub.pid,
                                                        data_dir))
                continue
            if phase == "batch-wrk":
                r = wrk_batches(port, fleet, args.seconds, args.wrk_batch_connections, hub.pid, data_dir,
                                per_batch=args.events_per_batch, max_events=args.max_events, first_batch=first_batch,
                                data_dir=data_dir)
                first_batch += r["rounds"] + 2
                results["phases"].append(r)
                continue
            r = run_phase(port, hub.pid, fleet, phase, seconds=args.seconds, interval=args.interval,
                          events_per_batch=args.events_per_batch, first_batch=first_batch, clients=args.clients,
                          max_events=args.max_events)
            first_batch += r["rounds"] + 2
            results["phases"].append(r)
        results["hub"] = hub_totals(data_dir)
        results["acked_events"] = sum(p["stored_events"] for p in results["phases"])  # wrk phases: counted at the hub
        results["exact"] = results["hub"]["events"] == results["acked_events"]
    finally:
        os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            results["data_dir"] = str(data_dir)
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    else:
        print_report(results)
    return results


def print_report(r: dict) -> None:
    base = r["baseline_login_page_per_s"]
    print(f"fleet: {r['nodes']} nodes enrolled in {r['enrol_seconds']} s; {r['cpus']} CPUs shared by hub and clients")
    print(f"load average before the run: {' '.join(f'{x:.1f}' for x in r['loadavg_before'])}")
    print(f"baseline (same hub, GET /login, one connection): {base:,.0f} req/s")
    for p in r["phases"]:
        print(f"\n[{p['phase']}] {p['seconds']:.0f} s")
        if p["heartbeats"]:
            print(f"  signed heartbeats: {p['heartbeats_per_s']:,.0f}/s  (×{p['heartbeats_per_s'] / base:.2f} baseline)"
                  f"  p50 {p['hb_p50_ms']:.1f} ms  p95 {p['hb_p95_ms']:.1f} ms")
        if p.get("exhausted"):
            print(f"  every pre-sealed batch ({p['sealed_events']:,} events) was stored before the end: "
                  "the events/s below is a lower bound")
        if p["batches"]:
            print(f"  batches: {p['batches_per_s']:,.1f}/s over {p['batch_seconds']:.1f} s  events: {p['events_per_s']:,.0f}/s"
                  f"  p50 {p['batch_p50_ms']:.1f} ms  p95 {p['batch_p95_ms']:.1f} ms")
        if p.get("hub_cpu_ms_per_heartbeat"):
            print(f"  hub CPU {p['hub_cpu_ms_per_heartbeat']:.2f} ms per heartbeat → two idle cores would carry "
                  f"{p['capacity_heartbeats_per_s_2_cores']:,.0f}/s")
        if p.get("hub_cpu_us_per_event"):
            print(f"  hub CPU {p['hub_cpu_us_per_event']:.1f} µs per event → two idle cores would carry "
                  f"{p['capacity_events_per_s_2_cores']:,.0f} events/s")
        print(f"  hub RSS (master + workers) max {p['hub_rss_mb_max']:.0f} MB; errors {p['errors']}"
              + (f" e.g. {p['error_samples'][:2]}" if p["errors"] else ""))
    print(f"\nhub stored {r['hub']['events']:,} events in {r['hub']['batches']:,} batches; the Python clients saw "
          f"{r['acked_events']:,} acknowledged as stored (wrk phases: counted at the hub) → "
          f"{'exact' if r['exact'] else 'MISMATCH'}")


if __name__ == "__main__":
    main()
