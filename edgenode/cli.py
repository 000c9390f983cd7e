"""The ``edgenode`` command: one click group that mounts the node's and the hub's commands.

The package's entry point, above both applications: the node's areas declare
their command lists in their ``area.py`` (``core.registry``), the county hub
brings its own ``edgenode hub`` group.  Nothing in the package imports this module.
"""

from __future__ import annotations

import logging
import sys

import click

from edgenode import __version__
from edgenode.core import registry
from edgenode.core.context import Context
from edgenode.core.errors import EdgenodeError
from edgenode.hub.cli import COMMANDS as HUB_COMMANDS, hub_group
from edgenode.hub.fanout_cli import COMMANDS as HUB_FANOUT_COMMANDS
from edgenode.hub.release_cli import COMMANDS as RELEASE_COMMANDS


class EdgenodeGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgenodeError as e:
            raise click.ClickException(e.cli_message()) from None


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


for _ref in registry.refs("cli"):
    for _command in registry.resolve(_ref):
        cli.add_command(_command)
for _command in HUB_COMMANDS + RELEASE_COMMANDS:
    cli.add_command(_command)
for _command in HUB_FANOUT_COMMANDS:
    hub_group.add_command(_command)


def main() -> None:
    cli(prog_name="edgenode")
