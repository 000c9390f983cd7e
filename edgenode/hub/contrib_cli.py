"""``edgenode hub contrib``: the county's review of villagers' works from the command line."""

from __future__ import annotations

import json

import click

from edgenode.core.errors import EdgenodeError


def _conn(ctx):
    from edgenode.hub.database import open_hub

    cfg = ctx.obj.cfg
    return cfg, open_hub(cfg)


def _run(ctx, fn):
    cfg, conn = _conn(ctx)
    try:
        return fn(cfg, conn)
    except EdgenodeError as e:
        raise click.ClickException(e.cli_message()) from None
    finally:
        conn.close()


@click.group("contrib")
def contrib_group():
    """Villagers' works sent up by the nodes: list, adopt, decline, publish, import a stick."""


@contrib_group.command("list")
@click.pass_context
def list_cmd(ctx):
    """Every contribution received (JSON lines)."""
    from edgenode.hub import contrib_review as review

    for r in _run(ctx, lambda cfg, conn: review.listing(conn)):
        click.echo(json.dumps(r, ensure_ascii=False))


@contrib_group.command("adopt")
@click.argument("node_id")
@click.argument("cid")
@click.option("--title", default="")
@click.option("--credit", default=None)
@click.option("--column", default="shequ")
@click.option("--campaign", default=None)
@click.pass_context
def adopt_cmd(ctx, node_id, cid, title, credit, column, campaign):
    """Adopt a work for the next 本县群众作品 bundle."""
    from edgenode.hub import contrib_review as review

    _run(ctx, lambda cfg, conn: review.adopt(conn, node_id, cid, title=title, credit=credit, column=column,
                                             campaign=campaign))
    click.echo(f"adopted {node_id}/{cid}")


@contrib_group.command("decline")
@click.argument("node_id")
@click.argument("cid")
@click.option("--reason", required=True)
@click.pass_context
def decline_cmd(ctx, node_id, cid, reason):
    """Decline a work with a reason (the point's admin page shows it)."""
    from edgenode.hub import contrib_review as review

    _run(ctx, lambda cfg, conn: review.decline(conn, node_id, cid, reason))
    click.echo(f"declined {node_id}/{cid}")


@contrib_group.command("publish")
@click.pass_context
def publish_cmd(ctx):
    """Publish every adopted work as one signed bundle of contrib.channel."""
    from edgenode.hub import contrib_review as review

    out = _run(ctx, lambda cfg, conn: review.publish(conn, cfg))
    click.echo(json.dumps(out, ensure_ascii=False))


@contrib_group.command("forward")
@click.argument("node_id")
@click.argument("cid")
@click.pass_context
def forward_cmd(ctx, node_id, cid):
    """Mark an adopted work for the upstream (provincial) hub; `edgenode hub housekeeping` sends it."""
    from edgenode.hub import contrib_forward

    _run(ctx, lambda cfg, conn: contrib_forward.mark(conn, node_id, cid))
    click.echo(f"{node_id}/{cid} will go to the upstream hub")


@contrib_group.command("forward-now")
@click.pass_context
def forward_now_cmd(ctx):
    """Send the works marked for the upstream hub now."""
    from edgenode.hub import contrib_forward

    click.echo(json.dumps(_run(ctx, lambda cfg, conn: contrib_forward.send(conn, cfg)), ensure_ascii=False))


@contrib_group.command("import-stick")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.pass_context
def import_cmd(ctx, path):
    """Import contributions a point without a link exported to a USB stick (export-logs)."""
    from edgenode.hub.contrib_usb import import_stick

    click.echo(json.dumps(_run(ctx, lambda cfg, conn: import_stick(conn, cfg, path)), ensure_ascii=False))
