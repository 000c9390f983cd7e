"""``edgenode hub mirror ...`` and ``edgenode hub fanout``: township mirrors and the egress figures."""

from __future__ import annotations

import click

from edgenode.hub.cli import _hub, domain_errors, echo_json, json_option, pass_ctx


@click.group("mirror")
def mirror_group():
    """Township mirrors: nodes that serve content to the nodes of their township."""


@mirror_group.command("set")
@click.argument("node")
@click.option("--rsync-url", default="", help="rsync://ADDR:PORT/edgenode (default: what the node reports).")
@click.option("--http-url", default="", help="http://ADDR:PORT/edgenode (default: what the node reports).")
@json_option
@pass_ctx
@domain_errors
def mirror_set(ctx, node, rsync_url, http_url, as_json):
    """Give NODE (id, id prefix or name) the mirror role for its township."""
    from edgenode.hub import fanout
    out = fanout.set_mirror(_hub(ctx), node, rsync_url=rsync_url, http_url=http_url)
    echo_json(out) if as_json else click.echo(f"mirror {out['node_id']} serves township {out['township'] or '-'}")


@mirror_group.command("remove")
@click.argument("node")
@json_option
@pass_ctx
@domain_errors
def mirror_remove(ctx, node, as_json):
    """Take the mirror role away from NODE; its nodes pull from the county again."""
    from edgenode.hub import fanout
    out = fanout.remove_mirror(_hub(ctx), node)
    echo_json(out) if as_json else click.echo(f"{out['node_id']}: {'removed' if out['removed'] else 'was no mirror'}")


@mirror_group.command("tree")
@json_option
@pass_ctx
@domain_errors
def mirror_tree(ctx, as_json):
    """The fan-out tree: each mirror and the nodes below it, then the nodes the county serves directly."""
    from edgenode.hub import fanout
    tree = fanout.tree(_hub(ctx))
    if as_json:
        echo_json(tree)
        return
    for t in tree:
        click.echo(f"{t['state']:9} {t['name'] or t['node_id']} {t['township']}")
        for n in t["children"]:
            click.echo(f"          └ {n['name'] or n['node_id']}")


@click.command("fanout")
@json_option
@pass_ctx
@domain_errors
def fanout_report(ctx, as_json):
    """Per channel and month: bytes published, the county's egress and egress ÷ published."""
    from edgenode.hub import fanout
    rows = fanout.egress_report(_hub(ctx), ctx.cfg)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'month':8} {'channel':12} {'published':>12} {'county':>12} {'mirror':>12} {'ratio':>6}")
    for r in rows:
        ratio = "-" if r["egress_ratio"] is None else f"{r['egress_ratio']:.2f}"
        click.echo(f"{r['month']:8} {r['channel'] or '-':12} {r['published']:>12} {r['county']:>12} "
                   f"{r['mirror']:>12} {ratio:>6}")


@click.command("torrents")
@json_option
@pass_ctx
@domain_errors
def torrents_cmd(ctx, as_json):
    """Make the .torrent (web seed: hub.web_seed_url) of every published bundle that has none."""
    from edgenode.hub import swarm
    from edgenode.hub.publish import rsync_root
    made = swarm.make_missing(_hub(ctx), ctx.cfg, rsync_root(ctx.cfg))
    echo_json(made) if as_json else click.echo("\n".join(made) or "every bundle has its torrent")


COMMANDS = [mirror_group, fanout_report, torrents_cmd]  # mounted under `edgenode hub` by edgenode/cli.py
