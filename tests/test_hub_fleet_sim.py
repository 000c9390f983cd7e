"""A tiny run of the fleet simulator (bench/fleet_sim.py): real gunicorn hub, 20 enrolled nodes."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_fleet_sim_smoke_counts_exactly():
    path = Path(__file__).resolve().parent.parent / "bench" / "fleet_sim.py"
    spec = importlib.util.spec_from_file_location("fleet_sim", path)
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    r = sim.main(["--nodes", "20", "--seconds", "1.5", "--interval", "0.5", "--events-per-batch", "50",
                  "--clients", "2", "--phases", "heartbeat-wrk,mixed", "--baseline-requests", "20", "--json"])
    assert [p["phase"] for p in r["phases"]] == ["heartbeat-wrk", "mixed"]
    wrk, mixed = r["phases"]
    assert wrk["heartbeats"] > 0 and wrk["errors"] == 0  # wrk replays signed heartbeats: all accepted
    assert all(p["errors"] == 0 for p in r["phases"]), [p["error_samples"] for p in r["phases"]]
    assert mixed["heartbeats"] >= 20 and mixed["stored"] >= 20
    assert r["hub"]["nodes_with_heartbeat"] == 20
    assert r["exact"] and r["hub"]["events"] == r["acked_events"] > 0
