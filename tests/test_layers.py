"""The house rules: the parts and the areas' order (import-linter), SQL only in query modules, no
import by name outside the registry, the architecture page in step with the contracts, sizes."""

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "edgenode"
LINT = Path(sys.executable).parent / "lint-imports"


def _modules():
    for f in sorted(PACKAGE.rglob("*.py")):
        yield f, ast.parse(f.read_text(encoding="utf-8"), filename=str(f))


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240)


def test_the_import_contracts_hold():
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 broken" in r.stdout


BREAKS = [
    # (file to append to, the import, the contract that must break)
    ("core/config.py", "from edgenode.node.catalog import queries", "Core is independent of node and hub"),
    ("protocol/bundle.py", "import flask", "Core and protocol import no node area"),
    ("hub/fleet.py", "from edgenode.node.web import errors", "The hub depends only on core and protocol"),
    ("node/catalog/search.py", "from edgenode.node.portal import views", "The node's areas form layers"),
    ("node/usage/stats.py", "from edgenode.node.storage import state", "The node's areas form layers"),
    ("hub/days.py", "from edgenode.hub import ingest", "No import cycles"),
]


@pytest.mark.parametrize("target,line,contract", BREAKS, ids=[b[0] for b in BREAKS])
def test_breaking_a_contract_on_purpose_fails_the_check(tmp_path, target, line, contract):
    shutil.copytree(PACKAGE, tmp_path / "edgenode", ignore=shutil.ignore_patterns("__pycache__", "static",
                                                                                "translations", "templates"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    with (tmp_path / "edgenode" / target).open("a", encoding="utf-8") as f:
        f.write(f"\n{line}  # deliberately wrong\n")
    r = _lint(tmp_path)
    assert r.returncode != 0, r.stdout
    broken = r.stdout.split("Broken contracts", 1)[1]
    assert contract in broken, r.stdout


def _is_query_module(path: Path) -> bool:
    stem = path.stem
    return (stem in ("queries", "schema") or stem.endswith(("_queries", "_schema"))
            or path == PACKAGE / "core" / "db.py")


# SQL still outside query modules, module by module (issue 14): nothing is left, every module's SQL
# is in a query or schema module.  The set may only stay empty: a module that runs SQL outside a
# query module fails the test.
SQL_DEBT: set[str] = set()


def test_sql_runs_only_in_query_and_schema_modules():
    found = set()
    for f, tree in _modules():
        if _is_query_module(f):
            continue
        for n in ast.walk(tree):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("execute", "executemany", "executescript")):
                found.add(f.relative_to(PACKAGE).as_posix())
    assert sorted(found - SQL_DEBT) == [], "move this SQL into the area's queries module"
    assert sorted(SQL_DEBT - found) == [], "no SQL left here: take it off SQL_DEBT"


def test_nothing_imports_by_name_but_the_registry():
    offenders = []
    for f, tree in _modules():
        for n in ast.walk(tree):
            by_name = (isinstance(n, ast.Call) and (
                (isinstance(n.func, ast.Name) and n.func.id == "__import__")
                or (isinstance(n.func, ast.Attribute) and n.func.attr == "import_module")))
            if by_name and f != PACKAGE / "core" / "registry.py":
                offenders.append(f"{f.relative_to(REPO)}:{n.lineno}")
    assert offenders == []


def test_no_module_over_500_lines_and_no_function_over_80():
    long_modules, long_functions = [], []
    for f, tree in _modules():
        if len(f.read_text(encoding="utf-8").splitlines()) > 500:
            long_modules.append(str(f.relative_to(REPO)))
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80:
                long_functions.append(f"{f.relative_to(REPO)}:{n.name}")
    assert long_modules == []
    assert long_functions == []


def _contract_layers(name_start: str) -> list[str]:
    cp = configparser.ConfigParser()
    cp.read(REPO / ".importlinter")
    for section in cp.sections():
        if cp[section].get("name", "").startswith(name_start):
            return [line.strip() for line in cp[section]["layers"].splitlines() if line.strip()]
    raise AssertionError(f"no contract named {name_start!r}")


def _doc_block(title: str) -> list[str]:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- {title} -->\n```\n(.*?)```", text, re.S)
    assert m, f"docs/ARCHITECTURE.md lacks the <!-- {title} --> block"
    return [line.split("#")[0].strip() for line in m.group(1).splitlines() if line.split("#")[0].strip()]


def test_architecture_page_draws_the_contracts():
    assert _doc_block("parts") == _contract_layers("The four parts")
    layers = _contract_layers("The node's areas form layers")
    assert _doc_block("node layers") == layers
    from edgenode.node.areas import AREAS

    areas = [a.name for a in AREAS if a.name != "web"]  # the shell's own declarations
    assert [x for x in reversed(layers) if x in areas] == areas, "node/areas.py lists the areas bottom to top"
