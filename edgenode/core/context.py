"""What a command's body works with: config, main database and store, each opened on first use.

Framework-free, so that the node's and the hub's command modules (click) share one.
"""

from __future__ import annotations

from edgenode.core.config import load_config


class Context:
    """Lazily opened config, database and store shared by a command's body."""

    def __init__(self, data_dir: str | None, config_path: str | None):
        self._overrides = {"data_dir": data_dir} if data_dir else {}
        self._config_path = config_path
        self._cfg = self._conn = self._store = None

    @property
    def cfg(self):
        if self._cfg is None:
            self._cfg = load_config(self._config_path, overrides=self._overrides)
        return self._cfg

    @property
    def conn(self):
        if self._conn is None:
            from edgenode.core.db import open_main
            self._conn = open_main(self.cfg, check=True)
        return self._conn

    @property
    def store(self):
        if self._store is None:
            from edgenode.core.store import open_store
            self._store = open_store(self.cfg)
        return self._store

    def close(self):
        if self._conn is not None:
            self._conn.close()
