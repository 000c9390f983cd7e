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


@click.group("swarm")
def swarm_group():
    """The BitTorrent swarm of the county's nodes, the hub as web seed (docs/fanout.md)."""


def _peer(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


@swarm_group.command("fetch")
@click.argument("torrent", type=click.Path(exists=True, dir_okay=False))
@click.option("--peer", "peers", multiple=True,
              help="HOST:PORT of a county node (repeatable; default: the hub's list from the last heartbeat).")
@click.option("--seconds", type=float, default=3600, show_default=True, help="Stop after this long (the window).")
@click.option("--seed-seconds", type=float, help="Seed this long after finishing (default: swarm.seed_minutes).")
@click.option("--port", type=int, help="Listen port (default: swarm.listen_port).")
@click.option("--rank", type=int, help="This node's place in the peer order (default: the hub's word).")
@json_option
@pass_ctx
@domain_errors
def swarm_fetch(ctx, torrent, peers, seconds, seed_seconds, port, rank, as_json):
    """Fetch TORRENT's bundle from the swarm, import it, and seed it for a while."""
    from pathlib import Path
    from edgenode.node.sources import swarm
    from edgenode.node.sources import fanout
    listed, hub_rank = fanout.swarm_peers(ctx.conn)  # the hub's list from the last heartbeat
    out = swarm.fetch(ctx.cfg, ctx.conn, ctx.store, Path(torrent), peers=[_peer(p) for p in peers] or listed,
                      seconds=seconds, seed_seconds=seed_seconds, port=port, rank=hub_rank if rank is None else rank)
    if as_json:
        echo_json(out)
    else:
        click.echo(f"{out['bundle']}: {out['state']}; {out['from_peers']} bytes from peers, "
                   f"{out['from_web_seed']} from the web seed; banned {', '.join(out['banned']) or 'none'}")
    if out["state"] != "done":
        raise SystemExit(1)
