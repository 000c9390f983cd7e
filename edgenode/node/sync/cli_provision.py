"""Commands the installer and technicians use: write the config, pending enrolment, backups."""

from __future__ import annotations

from pathlib import Path

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx
from edgenode.core.config import SYSTEM_CONFIG


@click.group("provision")
def provision_group():
    """Steps of provisioning/install.sh, callable on their own."""


@provision_group.command("write-config")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=SYSTEM_CONFIG,
              show_default=True, help="The TOML file to update.")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE",
              help="A setting from docs/configuration.md; repeatable. VALUE is read as in EDGENODE_* variables.")
@domain_errors
def write_config(path, pairs):
    """Set keys in the config file, keeping its other keys; refuses unknown keys and bad values."""
    from edgenode.core.config import BY_NAME, _coerce
    from edgenode.core.errors import ConfigError
    from edgenode.node.sync.provision import write_config as write

    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in BY_NAME:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE with a known key")
        try:
            values[name] = _coerce(BY_NAME[name], text, from_text=True)
        except ValueError as e:
            raise ConfigError(f"--set {name}: {e}") from None
    changed = write(path, values)
    click.echo(f"{path}: {'updated' if changed else 'unchanged'}")


@provision_group.command("pending-enroll")
@click.option("--hub", help="Hub URL to retry enrolment with.")
@click.option("--code-stdin", is_flag=True, help="Read the one-time code from standard input.")
@click.option("--clear", is_flag=True, help="Forget the pending enrolment.")
@click.option("--retry", is_flag=True, help="Try the pending enrolment now.")
@json_option
@pass_ctx
@domain_errors
def pending_enroll(ctx, hub, code_stdin, clear, retry, as_json):
    """Show, record (--hub with --code-stdin), retry or clear the enrolment the scheduler retries."""
    import sys

    from edgenode.node.sync import provision

    if retry:
        result = provision.retry_pending(ctx.cfg, ctx.conn)
        if as_json:
            echo_json(result)
        elif result is None:
            click.echo("nothing pending")
        else:
            click.echo(f"{result['status']}: {result.get('message') or result.get('hub_url')}")
        if result and result["status"] == "refused":
            raise click.ClickException(f"{result['error']}: {result['message']}")
        return
    if clear:
        click.echo("cleared" if provision.clear_pending(ctx.cfg) else "nothing pending")
        return
    if hub:
        code = sys.stdin.readline().strip() if code_stdin else click.prompt("Enrolment code", hide_input=True)
        provision.write_pending(ctx.cfg, hub, code, reason="hub unreachable at install")
    data = provision.read_pending(ctx.cfg)
    shown = None if data is None else {"hub": data["hub"], "since": data.get("since"), "code": "********"}
    if as_json:
        echo_json(shown)
    else:
        click.echo("nothing pending" if shown is None else f"pending enrolment with {shown['hub']}")


@click.group("backup")
def backup_group():
    """Back up and restore what cannot be downloaded again (database, identity, config)."""


@backup_group.command("db")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), help="Default: DATA_DIR/backups.")
@click.option("--keep", type=int, default=5, show_default=True, help="Newest backups to keep in --dest.")
@pass_ctx
@domain_errors
def backup_db(ctx, dest, keep):
    """Copy the live database with SQLite's online backup (used by provisioning/upgrade.sh)."""
    from edgenode.core import backup

    dest = dest or ctx.cfg.data_path / "backups"
    path = backup.backup_db(ctx.cfg.db_path, dest)
    backup.prune(dest, keep=keep)
    click.echo(str(path))


@backup_group.command("create")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
@domain_errors
def backup_create(ctx, dest):
    """Write a node backup (database, identity, session key, config) under DEST, e.g. a USB stick."""
    from edgenode.core import backup

    src = Path(ctx.cfg.source)
    click.echo(str(backup.create(ctx.cfg, dest, src if src.is_file() else None)))


@backup_group.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a different identity already on this machine.")
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path), default=SYSTEM_CONFIG,
              show_default=True, help="Where to put the backed-up config.")
@json_option
@pass_ctx
@domain_errors
def backup_restore(ctx, src, force, config_file, as_json):
    """Restore a node backup onto this machine (stop edgenode-web and edgenode-scheduler first)."""
    from edgenode.core import backup

    result = backup.restore(ctx.cfg, src, config_file, force=force)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"restored node {result['node_id']}: {', '.join(result['files'])}")


COMMANDS = [provision_group, backup_group]
