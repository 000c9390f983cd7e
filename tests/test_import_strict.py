"""One meaning per signed byte string, and nothing on a stick read before it is a small regular file.

Duplicate keys, NaN/Infinity and lone surrogates are refused (E_MANIFEST_INVALID) with the store
unchanged; the builder will not write them.  A FIFO, a socket, a symlink to /dev/zero or to a
2 GB file as manifest.json or its signature is refused with its code at once, and the good
bundle beside it on the same stick still imports (issue 16).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgenode.protocol import strictjson
from edgenode.protocol.build import build_bundle
from edgenode.protocol.bundle import MANIFEST, SIGNATURE, BundleError, STICK_FOLDER, parse_manifest
from edgenode.node.imports.history import recent
from edgenode.node.imports.pipeline import import_bundle
from tests.conftest import make_config
from tests.helpers_bundles import make_bundle, make_source, new_key, resign_raw, snapshot, trust_key


def _inject(before: str, dup: str, count: int = 1):
    """Put ``dup`` (a key and value) in front of the ``count``-th ``before`` in the manifest text."""
    def mutate(text: str) -> str:
        at = -1
        for _ in range(count):
            at = text.index(before, at + 1)
        return text[:at] + dup + ", " + text[at:]
    return mutate


def _replace(old: str, new: str):
    return lambda text: text.replace(old, new, 1)


OTHER_SHA = "0" * 64
DUPLICATES = [
    # (name, mutation of the signed manifest text).  Either copy of each key is a valid value, so
    # a parser that keeps the first and one that keeps the last both accept it: only strictness
    # makes them agree.
    ("channel", _inject('"channel": "sannong"', '"channel": "pushi"')),
    ("channel, the forbidden copy last", _replace('"channel": "sannong"', '"channel": "sannong", "channel": "pushi"')),
    ("seq", _inject('"seq": 6', '"seq": 7')),
    ("key_id", _inject('"key_id"', '"key_id": "0000000000000001"')),
    ("format", _inject('"format"', '"format": 1')),
    ("resources", _inject('"resources"', '"resources": []')),
    ("title of an entry", _inject('"title"', '"title": "别的标题"')),
    ("title of the second entry", _inject('"title"', '"title": "别的标题"', count=2)),
    ("sha256 of an entry", _inject('"sha256"', f'"sha256": "{OTHER_SHA}"')),
    ("size of an entry", _inject('"size"', '"size": 1')),
    ("path of an entry", _inject('"path"', '"path": "files/doc001.pdf"')),
    ("withdraw", _inject('"withdraw"', '"withdraw": ["doc000"]')),
    ("nested in a tags list's neighbour", _inject('"tags"', '"tags": ["x"]')),
]
CONSTANTS = [
    ("NaN as a size", _replace('"size": 4096', '"size": NaN')),
    ("Infinity as a seq", _replace('"seq": 6', '"seq": Infinity')),
    ("-Infinity as a size", _replace('"size": 4096', '"size": -Infinity')),
    ("lone surrogate in a title", _replace('"title": "', '"title": "\\udc80')),
    ("lone surrogate in a key", _replace('"title"', '"ti\\ud800tle"')),
]


@pytest.fixture
def node(tmp_path):
    from edgenode.core.db import open_main
    from edgenode.core.store import open_store
    cfg = make_config(tmp_path / "data", store__free_space_floor_mb=0)
    conn = open_main(cfg)
    store = open_store(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong")
    first = make_bundle(tmp_path / "first", sk, seq=5, n=2, seed=9)
    assert import_bundle(cfg, conn, store, first, source="test").result == "imported"
    yield {"cfg": cfg, "conn": conn, "store": store, "sk": sk, "tmp": tmp_path}
    conn.close()


@pytest.mark.parametrize("name, mutate", DUPLICATES + CONSTANTS, ids=[c[0] for c in DUPLICATES + CONSTANTS])
def test_an_ambiguous_manifest_is_refused_and_changes_nothing(node, name, mutate):
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=3, size=4096)
    text = (bundle / MANIFEST).read_text(encoding="utf-8")
    hostile = mutate(text)
    assert hostile != text, f"{name}: the mutation found nothing to change"
    json.loads(hostile)  # Python's own parser takes it: only the strict reading refuses it
    resign_raw(bundle, sk, hostile.encode("utf-8"))
    before = snapshot(conn, store)

    result = import_bundle(cfg, conn, store, bundle, source="test")

    assert (result.result, result.error_code) == ("failed", "E_MANIFEST_INVALID"), (name, result.error)
    assert "内容包" in result.error_zh
    assert snapshot(conn, store) == before
    assert recent(conn, 1)[0]["error_code"] == "E_MANIFEST_INVALID"


def test_the_same_manifest_without_the_duplicate_imports(node):
    """The table's bundles fail for the duplicate, not for being re-signed by hand."""
    cfg, conn, store, sk = node["cfg"], node["conn"], node["store"], node["sk"]
    bundle = make_bundle(node["tmp"], sk, seq=6, n=3, size=4096)
    resign_raw(bundle, sk, (bundle / MANIFEST).read_bytes())
    assert import_bundle(cfg, conn, store, bundle, source="test").result == "imported"


@pytest.mark.parametrize("text, why", [
    ('{"a": 1, "a": 1}', "duplicate key 'a'"),
    ('{"a": {"b": [{"c": 1, "c": 2}]}}', "duplicate key 'c'"),
    ('[NaN]', "NaN is not JSON"),
    ('{"x": "\\ud800"}', "lone surrogate"),
])
def test_strict_json_names_what_it_refused(text, why):
    with pytest.raises(strictjson.StrictJSONError, match=why):
        strictjson.loads(text)


def test_strict_json_reads_a_deep_document_without_recursing_in_python():
    deep = "[" * 5000 + "]" * 5000
    try:
        strictjson.loads(deep)
    except RecursionError:
        pass  # the C parser's own limit, which parse_manifest reports as E_MANIFEST_INVALID
    with pytest.raises(BundleError) as e:
        parse_manifest(deep.encode())
    assert e.value.code == "E_MANIFEST_INVALID"


@pytest.mark.parametrize("field, value", [("title", float("nan")), ("description", "坏\udc80"),
                                          ("tags", [float("inf")])])
def test_the_builder_refuses_to_write_what_nodes_refuse(tmp_path, field, value):
    src = make_source(tmp_path / "src", n=1)
    resources = [{"path": "doc000.pdf", "title": "标题", field: value}]
    sk = new_key(tmp_path)
    with pytest.raises(BundleError) as e:
        build_bundle(src, "sannong", 1, tmp_path / "out", secret_key=sk, resources=resources)
    assert e.value.code in ("E_MANIFEST_INVALID", "E_METADATA")
    assert not (tmp_path / "out" / "sannong-00000001").exists()


def test_the_builder_refuses_a_resources_json_with_duplicate_keys(tmp_path):
    src = make_source(tmp_path / "src", n=1)
    (src / "resources.json").write_text('[{"path": "doc000.pdf", "title": "甲", "title": "乙"}]', encoding="utf-8")
    with pytest.raises(BundleError) as e:
        build_bundle(src, "sannong", 1, tmp_path / "out", secret_key=new_key(tmp_path))
    assert e.value.code == "E_MANIFEST_INVALID" and "duplicate key 'title'" in str(e.value)


# -- hostile entries on a stick, through the real command ------------------------------------

def _fifo(p: Path, _tmp: Path):
    os.mkfifo(p)


def _socket(p: Path, _tmp: Path):
    # AF_UNIX paths are short: bind in a short folder, then move the socket file into place.
    import tempfile
    with tempfile.TemporaryDirectory(dir="/tmp") as short:
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(short, "s"))
        s.close()  # the socket file stays
        os.rename(os.path.join(short, "s"), p)


def _dev_zero(p: Path, _tmp: Path):
    p.symlink_to("/dev/zero")


def _big_file(p: Path, tmp: Path):
    big = tmp / "big.json"
    with open(big, "wb") as f:
        f.truncate(2 * 1024 ** 3)  # sparse: 2 GB that costs no disk
    p.symlink_to(big)


HOSTILE = [
    (MANIFEST, "FIFO", _fifo, "E_NOT_REGULAR_FILE"),
    (MANIFEST, "socket", _socket, "E_NOT_REGULAR_FILE"),
    (MANIFEST, "symlink to /dev/zero", _dev_zero, "E_NOT_REGULAR_FILE"),
    (MANIFEST, "symlink to a 2 GB file", _big_file, "E_NOT_REGULAR_FILE"),
    (SIGNATURE, "FIFO", _fifo, "E_NOT_REGULAR_FILE"),
    (SIGNATURE, "socket", _socket, "E_NOT_REGULAR_FILE"),
    (SIGNATURE, "symlink to /dev/zero", _dev_zero, "E_NOT_REGULAR_FILE"),
    (SIGNATURE, "symlink to a 2 GB file", _big_file, "E_NOT_REGULAR_FILE"),
]


@pytest.mark.parametrize("name, file, kind, make, code",
                         [(f"{f} is a {k}", f, k, m, c) for f, k, m, c in HOSTILE],
                         ids=[f"{f} {k}" for f, k, _, _ in HOSTILE])
def test_a_hostile_entry_on_a_stick_is_refused_and_the_good_bundle_beside_it_imports(
        tmp_path, name, file, kind, make, code):
    data = tmp_path / "data"
    cfg = make_config(data, store__free_space_floor_mb=0)
    from edgenode.core.db import open_main
    conn = open_main(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk, "sannong", "pushi")
    conn.close()
    stick = tmp_path / "stick" / STICK_FOLDER
    good = make_bundle(tmp_path / "g", sk, channel="sannong", seq=1, n=2)
    bad = make_bundle(tmp_path / "b", sk, channel="pushi", seq=1, n=1)
    stick.mkdir(parents=True)
    # A hang or a crash on the hostile bundle would stop the good one.
    os.rename(bad, stick / "a-hostile")
    os.rename(good, stick / "b-good")
    (stick / "a-hostile" / file).unlink()
    make(stick / "a-hostile" / file, tmp_path)

    started = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "edgenode", "--data-dir", str(data), "import", "--json",
                        str(tmp_path / "stick")], capture_output=True, text=True, timeout=60,
                       )
    elapsed = time.monotonic() - started
    assert p.returncode == 1, (name, p.stdout, p.stderr)  # one bundle failed
    results = {Path(r["bundle"]).name: r for r in json.loads(p.stdout)}
    assert (results["a-hostile"]["result"], results["a-hostile"]["error_code"]) == ("failed", code), name
    # Refused at once: not a byte of /dev/zero or the 2 GB file read (measured here: about 5 ms).
    assert results["a-hostile"]["duration"] < 1.0, results["a-hostile"]["duration"]
    assert results["b-good"]["result"] == "imported", results["b-good"]
    assert "Traceback" not in p.stderr
    # No byte of /dev/zero or the 2 GB file was read: the whole command is a small one.
    assert elapsed < 30, elapsed
