"""The hashed locks agree with setup.cfg: every declared dependency is pinned within its range,
nothing is pinned that nobody asked for, the two locks share versions, and every pin has a hash.

Regenerate with `make lock` (requirements/lock.sh; docs/operations.md "Updating dependencies")."""

import configparser
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCKS = REPO / "requirements"


def parse_lock(path: Path) -> dict[str, dict]:
    """{name: {"version", "hashes", "via"}} from a pip-compile --generate-hashes file."""
    entries, current = {}, None
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", line):
            current = entries.setdefault(canonicalize_name(m.group(1)), {"version": m.group(2), "hashes": [],
                                                                         "via": []})
        elif current is not None and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            current["hashes"].append(h.group(1))
        elif current is not None and (v := re.match(r"^\s*#\s+(?:via\s+)?(\S.*)$", line)):
            current["via"].append(v.group(1).strip())
        elif line.startswith("-") or "index-url" in line:
            raise AssertionError(f"{path.name}: an option line would send installs elsewhere: {line!r}")
    return entries


def declared() -> dict[str, list[Requirement]]:
    cp = configparser.ConfigParser()
    cp.read(REPO / "setup.cfg")

    def reqs(text: str) -> list[Requirement]:
        return [Requirement(line.split("#")[0].strip()) for line in text.splitlines() if line.split("#")[0].strip()]

    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    return {"runtime": reqs(cp["options"]["install_requires"]),
            **{extra: reqs(text) for extra, text in cp["options.extras_require"].items()},
            "build": [Requirement(r) for r in build]}


def disagreements(entries: dict, groups) -> list[str]:
    wrong = []
    for group in groups:
        for req in declared()[group]:
            pin = entries.get(canonicalize_name(req.name))
            if pin is None or not req.specifier.contains(pin["version"], prereleases=True):
                wrong.append(f"{group}: {req} -> {pin and pin['version']}")
    return wrong


@pytest.fixture(scope="module")
def locks():
    return {name: parse_lock(LOCKS / f"{name}.lock") for name in ("dev", "node")}


@pytest.mark.parametrize("lock,groups", [("dev", ("runtime", "test", "demo", "build")), ("node", ("runtime", "build"))])
def test_every_declared_dependency_is_pinned_within_its_range(locks, lock, groups):
    assert disagreements(locks[lock], groups) == [], f"requirements/{lock}.lock disagrees with setup.cfg; run `make lock`"


@pytest.mark.parametrize("lock,groups", [("dev", ("runtime", "test", "demo", "build")), ("node", ("runtime", "build"))])
def test_nothing_is_pinned_that_the_project_does_not_pull_in(locks, lock, groups):
    """A package the lock says edgenode asked for must still be declared (a dropped dependency relocks)."""
    names = {canonicalize_name(r.name) for g in groups for r in declared()[g]}
    claimed = {n for n, e in locks[lock].items() if any(v.startswith("edgenode") for v in e["via"])}
    assert sorted(claimed - names) == []
    assert sorted(names - set(locks[lock])) == []


def test_the_two_locks_agree_and_the_node_lock_has_no_test_tools(locks):
    dev, node = locks["dev"], locks["node"]
    assert {n: e["version"] for n, e in node.items() if dev.get(n, {}).get("version") != e["version"]} == {}
    test_only = {canonicalize_name(r.name) for r in declared()["test"]} - {
        canonicalize_name(r.name) for r in declared()["runtime"] + declared()["build"]}
    assert sorted(test_only & set(node)) == []


def test_every_pin_carries_a_hash(locks):
    assert [f"{lock}: {n}" for lock, entries in locks.items() for n, e in entries.items() if not e["hashes"]] == []
    assert len(locks["dev"]) > 40 and len(locks["node"]) > 25


def test_a_lock_that_disagrees_is_caught(tmp_path, locks):
    """The check can fail: a lock pinning flask outside setup.cfg's range is reported."""
    text = (LOCKS / "node.lock").read_text()
    flask = locks["node"]["flask"]["version"]
    bad = tmp_path / "node.lock"
    bad.write_text(text.replace(f"flask=={flask}", "flask==2.0.0"))
    assert disagreements(parse_lock(bad), ("runtime",)) == ["runtime: flask<4,>=3.0 -> 2.0.0"]
    missing = tmp_path / "missing.lock"
    missing.write_text(re.sub(r"(?ms)^flask==.*?(?=^\S)", "", text))
    assert disagreements(parse_lock(missing), ("runtime",)) == ["runtime: flask<4,>=3.0 -> None"]
