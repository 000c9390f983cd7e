"""Shared fixtures: a config factory, a database, a store, a CLI runner and the demo library.

Area-specific fixtures live in the area's own test module or in
``tests/helpers_<area>.py``; seed data lives in ``edgenode.node.imports.demo`` and
``tests/fixtures.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgenode.core.config import load_config


def make_config(data_dir: Path, **overrides):
    """A config with everything under ``data_dir``; ``overrides`` use ``section__key=value``."""
    return load_config(env={}, overrides={"data_dir": str(data_dir), **overrides})


@pytest.fixture
def cfg(tmp_path):
    return make_config(tmp_path / "data")


@pytest.fixture
def conn(cfg):
    from edgenode.core.db import open_main
    c = open_main(cfg, check=True)
    yield c
    c.close()


@pytest.fixture
def store(cfg):
    from edgenode.core.store import open_store
    return open_store(cfg)


@pytest.fixture
def runner(cfg):
    """Invoke the CLI against this test's data directory: ``runner("search", "水稻")``."""
    from edgenode.cli import cli

    def run(*args, input=None, env=None):
        return CliRunner().invoke(cli, ["--data-dir", str(cfg.data_path), *args], input=input,
                                  env={"EDGENODE_CONFIG": "", **(env or {})}, catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory):
    """The demo library, built once per test worker.  Copy it before changing it."""
    from edgenode.core.db import open_main
    from edgenode.node.imports.demo import build_demo
    from edgenode.core.store import open_store

    cfg = make_config(tmp_path_factory.mktemp("demo") / "data")
    conn = open_main(cfg, check=True)
    build_demo(conn, open_store(cfg), cfg)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return cfg.data_path


@pytest.fixture
def demo_cfg(demo_master, tmp_path):
    """A private copy of the demo library's data directory."""
    target = tmp_path / "data"
    shutil.copytree(demo_master, target, symlinks=True)
    return make_config(target)


@pytest.fixture
def demo_conn(demo_cfg):
    from edgenode.core.db import open_main
    c = open_main(demo_cfg, check=True)
    yield c
    c.close()


@pytest.fixture
def app(demo_cfg):
    from edgenode.node.app import create_app
    a = create_app(demo_cfg)
    a.config["TESTING"] = True
    return a


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    """Real small media made by ffmpeg, shared read-only by tests."""
    from tests.fixtures import make_media
    return make_media(tmp_path_factory.mktemp("media"))
