"""``edgenode contrib``: villagers' contributions at the point (list, process, approve, reject, send)."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("contrib")
def contrib():
    """Villagers' uploads: processing, the administrator's review, the way up to the county."""


@contrib.command("list")
@json_option
@pass_ctx
@domain_errors
def list_cmd(ctx, as_json):
    """Every contribution and its state (待审核、已上传、县中心已采用、未采用 …)."""
    from edgenode.node.contrib import moderation

    items = moderation.listing(ctx.conn)
    if as_json:
        echo_json(items)
        return
    for c in items:
        click.echo(f"{c['id']}  {c['state']:<10} {c['kind'] or '-':<6} {c['title']}  {c['reason']}")


@contrib.command("process")
@json_option
@pass_ctx
@domain_errors
def process_cmd(ctx, as_json):
    """Expire abandoned uploads and process finished ones now (the scheduler does this every few minutes)."""
    from edgenode.node.contrib import process

    out = process.run_job(ctx.cfg)
    echo_json(out) if as_json else click.echo(out["message"])


@contrib.command("approve")
@click.argument("cid")
@pass_ctx
@domain_errors
def approve_cmd(ctx, cid):
    """Approve a pending contribution: it goes to the county in the next sync window."""
    from edgenode.node.contrib import moderation

    moderation.approve(ctx.cfg, ctx.conn, cid)
    click.echo(f"approved {cid}")


@contrib.command("reject")
@click.argument("cid")
@click.option("--reason", required=True, help="Why (shown to the volunteer; Chinese).")
@pass_ctx
@domain_errors
def reject_cmd(ctx, cid, reason):
    """Reject a contribution: its files are deleted at once."""
    from edgenode.node.contrib import moderation

    moderation.reject(ctx.cfg, ctx.conn, cid, reason)
    click.echo(f"rejected {cid}; files deleted")


@contrib.command("send")
@json_option
@pass_ctx
@domain_errors
def send_cmd(ctx, as_json):
    """Send approved contributions to the hub now, ignoring windows (and fetch the county's decisions)."""
    from edgenode.node.contrib import upstream
    from edgenode.node.sync import client

    out = upstream.send_all(ctx.cfg, ctx.conn, client.require_hub(ctx.cfg, ctx.conn))
    echo_json(out) if as_json else click.echo(f"sent {out['sent']}, resent bytes {out['resent_bytes']}")


COMMANDS = [contrib]
