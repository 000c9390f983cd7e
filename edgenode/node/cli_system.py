"""System commands: config, serve, database checks."""

from __future__ import annotations

import click
import tomli_w

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("config")
def config_group():
    """Inspect the effective configuration."""


@config_group.command("show")
@json_option
@pass_ctx
@domain_errors
def config_show(ctx, as_json):
    """Print the effective config (secrets masked) and where it came from."""
    data = ctx.cfg.as_dict(masked=True)
    if as_json:
        echo_json({"source": ctx.cfg.source, "config": data})
    else:
        click.echo(f"# source: {ctx.cfg.source}")
        click.echo(tomli_w.dumps(data), nl=False)


@click.command("serve")
@click.option("--host", help="Listen address (default: web.host).")
@click.option("--port", type=int, help="Listen port (default: web.port).")
@pass_ctx
@domain_errors
def serve(ctx, host, port):
    """Run the portal with the built-in server (development and `make run`).

    Production runs gunicorn behind nginx: see systemd/ and docs/serving.md.
    """
    from edgenode.node.app import create_app

    cfg = ctx.cfg
    app = create_app(cfg)
    host = host or cfg.web.host
    port = port or cfg.web.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"edgenode is serving {cfg.node.name} — open http://{shown}:{port}/", err=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@click.group("db")
def db_group():
    """Database maintenance."""


@db_group.command("check")
@json_option
@pass_ctx
@domain_errors
def db_check(ctx, as_json):
    """Run the integrity check and apply pending migrations."""
    from edgenode.core.db import migrations_state

    state = migrations_state(ctx.conn)  # opening runs quick_check + migrate
    if as_json:
        echo_json({"quick_check": "ok", "migrations": state})
    else:
        click.echo(f"quick_check: ok ({ctx.cfg.db_path})")
        for m in state:
            click.echo(f"  {m['area']}:{m['version']:04d} {m['name']}")


@db_group.command("prune-usage")
@click.option("--keep-days", type=click.IntRange(min=0), default=None,
              help="Keep events younger than this (default: usage.keep_days; 0 keeps everything).")
@json_option
@pass_ctx
@domain_errors
def db_prune_usage(ctx, keep_days, as_json):
    """Fold old usage events the outbox has sealed into all-time totals and delete them (housekeeping does this daily)."""
    from edgenode.node.sync.runner import prune_usage

    out = prune_usage(ctx.cfg, ctx.conn, keep_days=keep_days)
    if as_json:
        echo_json(out)
    else:
        click.echo(f"pruned {out['pruned']} usage events (up to sequence {out['upto_seq']})")


COMMANDS = [config_group, serve, db_group]
