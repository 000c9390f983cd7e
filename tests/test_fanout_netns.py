"""The county uplink, measured: a county, township mirrors and villages as network namespaces on shaped
links (tc tbf).  With mirrors the county's interface sends about one copy per township; pulling directly,
one per village.  Real processes throughout: rsync daemons in the namespaces, `edgenode sync now` in
each village's namespace, the real hub (on loopback) issuing upstream lists and mirror credentials."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers_topology import run_topology

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("tc"), reason="needs root and tc")


def _check(fig: dict) -> None:
    print(f"\n{fig['villages']} villages under {fig['townships']} mirrors, bundle {fig['bundle_bytes']} bytes: county "
          f"egress {fig['mirrored']['ratio']:.2f}x with mirrors ({fig['mirrored']['seconds']:.1f} s), "
          f"{fig['direct']['ratio']:.2f}x direct ({fig['direct']['seconds']:.1f} s)")
    assert fig["mirrored"]["ratio"] <= 2.5
    assert fig["direct"]["ratio"] >= 0.95 * fig["villages"]


def test_mirrors_cut_the_county_egress_small(tmp_path):
    _check(run_topology(tmp_path, townships=2, per_township=2, files=4, file_size=1_000_000, rate_mbit=40))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_mirrors_cut_the_county_egress_full_size(tmp_path):
    """The acceptance's form: 2 townships x 4 villages, a 200 MB bundle, 4 Mbit/s village links."""
    _check(run_topology(tmp_path, townships=2, per_township=4, files=20, file_size=10_000_000, rate_mbit=4))


def _check_swarm(fig: dict) -> None:
    print(f"\nswarm: {fig['villages']} villages, bundle {fig['bundle_bytes']} bytes: county egress {fig['ratio']:.2f}x "
          f"in {fig['seconds']:.1f} s; {fig['from_peers']} bytes between villages")
    assert fig["ratio"] <= 2.0


def test_the_swarm_keeps_the_county_egress_under_twice_the_bundle(tmp_path):
    from tests.helpers_topology import run_swarm
    # A peer waits 10 s of silence before the web seed (3 s in the helper's default): on a busy CI machine
    # a village's process may take seconds to start, and 3 s let the later ranks reach for the county.
    _check_swarm(run_swarm(tmp_path, villages=4, files=4, file_size=500_000, rate_mbit=20, after=10.0))


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_swarm_full_size(tmp_path):
    """The acceptance's form: 8 villages on 4 Mbit/s links, a 200 MB bundle, the hub as web seed."""
    from tests.helpers_topology import run_swarm
    _check_swarm(run_swarm(tmp_path, villages=8, files=20, file_size=10_000_000, rate_mbit=4, after=20))
