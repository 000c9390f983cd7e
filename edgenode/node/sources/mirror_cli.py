"""``edgenode mirror …`` (the mirror role) and ``edgenode traffic`` (bytes per source)."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("mirror")
def mirror_group():
    """The township mirror role: serve pulled channels to the nodes the hub assigns."""


@mirror_group.command("refresh")
@json_option
@pass_ctx
@domain_errors
def mirror_refresh(ctx, as_json):
    """Rewrite the mirror's access lists (the hub's credentials; empty outside mirror.windows)."""
    from edgenode.node.sources import mirror
    out = mirror.write_access(ctx.cfg, ctx.conn)
    echo_json(out) if as_json else click.echo(f"mirror {'open' if out['open'] else 'closed'}: {out['clients']} nodes")


@mirror_group.command("rsyncd-conf")
@click.option("--address", default="", help="Listen address (default: all).")
@pass_ctx
@domain_errors
def mirror_rsyncd_conf(ctx, address):
    """Print the mirror's rsyncd.conf (run it with: rsync --daemon --no-detach --config=FILE)."""
    from edgenode.node.sources import mirror
    click.echo(mirror.rsyncd_conf(ctx.cfg, address=address), nl=False)


@mirror_group.command("nginx-conf")
@pass_ctx
@domain_errors
def mirror_nginx_conf(ctx):
    """Print the mirror's nginx server block (HTTP with Range, behind the hub's credentials)."""
    from edgenode.node.sources import mirror
    click.echo(mirror.nginx_server(ctx.cfg), nl=False)


@click.command("traffic")
@json_option
@pass_ctx
@domain_errors
def traffic_cmd(ctx, as_json):
    """Bytes received and sent this month and last, per source (county, mirror, peer, satellite, stick)."""
    from edgenode.node.sources import fanout
    rows = fanout.traffic(ctx.conn)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['month']} {r['source']:9} {r['channel'] or '-':12} rx {r['rx']:>14} tx {r['tx']:>14}")
    if not rows:
        click.echo("no traffic counted yet")
