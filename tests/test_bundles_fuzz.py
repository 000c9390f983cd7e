"""Fuzzing the manifest parser: any input ends in a Manifest or a BundleError, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgenode.protocol.bundle import BundleError, Manifest, parse_manifest

TRIED = {"bytes": 0, "json": 0, "mutated": 0}
VALID = {
    "format": 1, "channel": "sannong", "seq": 3, "created": "2026-11-25T10:00:00Z", "expires": None,
    "key_id": "BAB80730327CE2DA",
    "resources": [{"id": "rice-1", "path": "files/rice.pdf", "size": 1000, "sha256": "a" * 64, "title": "水稻",
                   "description": "", "column": "sannong", "tags": ["水稻"], "kind": "pdf", "language": "zh"}],
    "withdraw": ["old-1"],
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


def _check(data: bytes) -> None:
    try:
        m = parse_manifest(data, max_bytes=64 * 1024)
    except BundleError as e:
        assert e.code.startswith("E_") and e.message
        return
    assert isinstance(m, Manifest)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data):
    TRIED["bytes"] += 1
    _check(data)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json(value):
    TRIED["json"] += 1
    _check(json.dumps(value).encode())


paths = st.sampled_from(["format", "channel", "seq", "created", "expires", "key_id", "resources", "withdraw",
                         "r.id", "r.path", "r.size", "r.sha256", "r.title", "r.column", "r.tags", "r.kind",
                         "r.language", "r.description", "extra"])


@settings(max_examples=1400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(paths, json_values | st.text(alphabet=st.characters(), max_size=300)), min_size=1,
                max_size=4))
def test_mutated_valid_manifest(edits):
    TRIED["mutated"] += 1
    doc = json.loads(json.dumps(VALID))
    for path, value in edits:
        if path.startswith("r."):
            if isinstance(doc["resources"], list) and doc["resources"] and isinstance(doc["resources"][0], dict):
                doc["resources"][0][path[2:]] = value
        else:
            doc[path] = value
    _check(json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_valid_manifest_parses_and_report_count():
    m = parse_manifest(json.dumps(VALID).encode())
    assert m.catalog_id("rice-1") == "sannong.rice-1"
    total = sum(TRIED.values())
    # Printed into the test log (-s or -rP): the issue asks how many inputs were tried.
    print(f"\nmanifest fuzzing: {total} inputs tried ({TRIED})")
    if total:  # when run after the fuzz tests in the same process
        assert total >= 1000
