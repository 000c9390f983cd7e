"""pyflakes over the package, the tests and the benchmarks: no unused imports, undefined names or dead code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pyflakes_is_clean():
    out = subprocess.run([sys.executable, "-m", "pyflakes", "edgenode", "tests", "bench"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr
