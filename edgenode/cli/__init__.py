"""The ``edgenode`` command: one click group, thin commands per area.

Commands parse arguments, call the area's functions and print.  Domain errors
become ``click.ClickException`` with their stable code at this boundary.
"""

from __future__ import annotations

import functools
import json
import logging
import sys

import click

from edgenode import __version__
from edgenode.config import load_config
from edgenode.errors import EdgenodeError


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
            from edgenode.db import open_main
            self._conn = open_main(self.cfg, check=True)
        return self._conn

    @property
    def store(self):
        if self._store is None:
            from edgenode.store import open_store
            self._store = open_store(self.cfg)
        return self._store

    def close(self):
        if self._conn is not None:
            self._conn.close()


def domain_errors(fn):
    """Turn EdgenodeError into a one-line 'error E_CODE: message' and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgenodeError as e:
            logging.getLogger("edgenode").debug("command failed", exc_info=True)
            raise click.ClickException(f"{e.code}: {e.message}") from None

    return wrapper


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


pass_ctx = click.make_pass_decorator(Context)


class EdgenodeGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgenodeError as e:
            raise click.ClickException(f"{e.code}: {e.message}") from None


@click.group(cls=EdgenodeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgenode")
@click.option("--data-dir", envvar="EDGENODE_DATA_DIR", type=click.Path(file_okay=False),
              help="Data directory (default from config: /var/lib/edgenode).")
@click.option("--config", "config_path", envvar="EDGENODE_CONFIG", type=click.Path(dir_okay=False),
              help="Config file (default: /etc/edgenode/edgenode.toml if it exists).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def cli(ctx, data_dir, config_path, verbose):
    """edgenode: the offline-first content appliance of a cultural service point."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(data_dir, config_path)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    # Each area contributes its commands from its own module.
    from edgenode.cli import admin, content, system, identity, provision
    from edgenode.cli import health
    from edgenode.cli import sync

    from edgenode.cli import hub
    from edgenode.cli import storage  # storage + transcode groups
    for command in storage.COMMANDS:
        cli.add_command(command)
    from edgenode.cli import bundles
    from edgenode.cli import activities  # activity, campaign, feedback, privacy
    for command in activities.COMMANDS:
        cli.add_command(command)

    for mod in (admin, content, system, identity, provision, health, sync, hub, bundles):
        for command in mod.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="edgenode")
