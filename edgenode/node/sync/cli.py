"""Sync commands: enrol with the hub, sync now, status, the scheduler process, USB log export."""

from __future__ import annotations

import logging
import sys

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx
from edgenode.node.sync.runner import KINDS


@click.command("enroll")
@click.argument("hub_url")
@click.option("--code", required=True, help="The one-time enrolment code issued at the hub.")
@json_option
@pass_ctx
@domain_errors
def enroll_cmd(ctx, hub_url, code, as_json):
    """Register this node's public key with the county hub at HUB_URL."""
    from edgenode.node.sync.enroll import enroll

    result = enroll(ctx.cfg, ctx.conn, hub_url, code)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"enrolled node {result['node_id']} with {result['hub_name'] or result['hub_url']}")


@click.group("sync")
def sync_group():
    """Exchange usage, heartbeats and content with the county hub."""


@sync_group.command("now")
@click.option("--job", "kinds", multiple=True, type=click.Choice(KINDS),
              help="Run only this job (repeatable). Default: uplink, heartbeat, pull.")
@json_option
@pass_ctx
@domain_errors
def sync_now_cmd(ctx, kinds, as_json):
    """Run sync jobs now, ignoring the windows and any back-off. Exit 1 if one failed."""
    from edgenode.node.sync.runner import sync_now

    results = sync_now(ctx.cfg, list(kinds) or None)
    if as_json:
        echo_json(results)
    else:
        for r in results:
            click.echo(f"{r['kind']}: {r['state']}" + (f" — {r['message']}" if r.get("message") else ""))
    if any(r["state"] == "failed" for r in results):
        sys.exit(1)


@sync_group.command("status")
@json_option
@pass_ctx
@domain_errors
def sync_status_cmd(ctx, as_json):
    """Show enrolment, outbox backlog, link back-off, windows and the last run of each job."""
    from edgenode.node.sync.status import status

    st = status(ctx.cfg, ctx.conn)
    if as_json:
        echo_json(st)
        return
    click.echo(f"hub: {st['hub_url'] or '(not enrolled)'}   rsync: {st['rsync_url'] or '(none)'}")
    ob = st["outbox"]
    click.echo(f"outbox: {ob['batches']} batches, {ob['bytes']} bytes; {st['unsealed_events']} events not sealed yet")
    for link in st["link"]:
        click.echo(f"link {link['target']}: {link['failures']} failures" +
                   (f", last error: {link['last_error']}" if link["last_error"] else ""))
    for kind, w in st["windows"].items():
        click.echo(f"window {kind}: {'open' if w['allowed'] else 'closed'} ({w['reason']})")
    for kind, j in st["jobs"].items():
        click.echo(f"{kind}: " + (f"{j['state']} {j['message']}" if j else "never run"))


@click.command("scheduler")
@pass_ctx
@domain_errors
def scheduler_cmd(ctx):
    """Run the scheduler process (pull, uplink, heartbeat, spool scan, housekeeping) until stopped."""
    from edgenode.core.scheduler import serve

    logging.getLogger("edgenode").setLevel(getattr(logging, ctx.cfg["log.level"]))
    if not logging.getLogger().handlers or logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(getattr(logging, ctx.cfg["log.level"]))
    ctx.conn  # migrate and check the database once at start-up
    serve(ctx.cfg)


@click.command("export-logs")
@click.argument("path", type=click.Path(file_okay=False))
@json_option
@pass_ctx
@domain_errors
def export_logs_cmd(ctx, path, as_json):
    """Write sealed usage batches and a heartbeat to PATH (a USB stick) for `edgenode hub import-logs`."""
    from edgenode.node.sync.export import export_logs

    result = export_logs(ctx.cfg, ctx.conn, path)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"exported {result['batches']} batches ({result['events']} events) to {result['path']}")


COMMANDS = [enroll_cmd, sync_group, scheduler_cmd, export_logs_cmd]
