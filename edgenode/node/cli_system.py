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
@click.option("--dev", is_flag=True, help="Use Flask's built-in development server (for working on the code).")
@click.option("--host", help="Listen address (default: web.host).")
@click.option("--port", type=int, help="Listen port (default: web.port).")
@pass_ctx
@domain_errors
def serve(ctx, dev, host, port):
    """Run the portal with the built-in development server (--dev).

    The product runs gunicorn behind nginx: `edgenode stack` in the foreground (`make run`),
    systemd units when installed (docs/serving.md).
    """
    from edgenode.core.errors import EdgenodeError
    from edgenode.node.app import create_app

    if not dev:
        raise EdgenodeError("E_USAGE", "the built-in server is for development only: run `edgenode stack` "
                                       "(gunicorn behind nginx, as production) or `edgenode serve --dev`")
    cfg = ctx.cfg
    app = create_app(cfg)
    host = host or cfg.web.host
    port = port or cfg.web.port
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"edgenode is serving {cfg.node.name} (development server) — open http://{shown}:{port}/", err=True)
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@click.command("stack")
@click.option("--host", help="Listen address (default: web.host; 0.0.0.0 is every LAN interface).")
@click.option("--port", type=int, help="Listen port for nginx (default: web.port).")
@click.option("--no-advertise", is_flag=True, help="Do not advertise the portal over mDNS.")
@pass_ctx
@domain_errors
def stack_cmd(ctx, host, port, no_advertise):
    """Run the production stack in the foreground: gunicorn behind nginx, the scheduler and the
    mDNS advertiser (`make run`).  Ctrl-C stops all of them."""
    from edgenode.node import stack

    cfg = ctx.cfg
    host = host or cfg.web.host
    port = port or cfg.web.port
    plan = stack.prepare(cfg, host=host, port=port, advertise=not no_advertise)
    password = stack.demo_password(ctx.conn, cfg.data_dir)
    addresses = stack.urls(host, port)
    click.echo(f"\nedgenode: {cfg.node.name}, gunicorn behind nginx, with the scheduler"
               f"{' and the mDNS advertiser' if 'advertise' in plan['processes'] else ''}")
    click.echo(f"  portal:  {addresses[0]}")
    for other in addresses[1:]:
        click.echo(f"           {other}   (terminals and phones on the LAN)")
    click.echo(f"  admin:   {addresses[0]}admin/   user admin, password "
               + (password if password else "(the one you set)"))
    click.echo("  Ctrl-C stops everything.\n")
    stack.run(plan)


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


COMMANDS = [config_group, serve, stack_cmd, db_group]
