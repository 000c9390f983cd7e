"""``edgenode live ...``: the schedule, the relay and the replay by hand."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("live")
def live_group():
    """Live broadcasts: schedule, relay, replay (docs/live.md)."""


@live_group.command("list")
@json_option
@pass_ctx
@domain_errors
def list_cmd(ctx, as_json):
    """Broadcasts scheduled, on now, or with a replay."""
    from edgenode.node.live import queries as q
    rows = q.listing(ctx.conn, time.time() - 30 * 86400, limit=200)
    if as_json:
        return echo_json(rows)
    for b in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["start"]))
        click.echo(f"{b['key']}  {when}  {b['state']}  {b['replay_state'] or '-'}  {b['title']}")


@live_group.command("schedule-import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--signature", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The minisign signature (default: PATH.minisig).")
@json_option
@pass_ctx
@domain_errors
def schedule_import(ctx, path, signature, as_json):
    """Apply a signed schedule document (as the hub writes it to a stick)."""
    from edgenode.node.live import schedule
    sig = signature or path.with_name(path.name + ".minisig")
    r = schedule.apply_document(ctx.cfg, ctx.conn, path.read_bytes(), sig.read_text(encoding="utf-8"))
    echo_json(r) if as_json else click.echo(f"{r['channel']} #{r['seq']}: {r['broadcasts']} broadcasts"
                                            + (" (unchanged)" if r["unchanged"] else ""))


@live_group.command("relay")
@click.argument("key")
@json_option
@pass_ctx
@domain_errors
def relay_cmd(ctx, key, as_json):
    """Relay one broadcast now, in the foreground (the scheduler does this by itself)."""
    from edgenode.core.errors import NotFound
    from edgenode.node.live import queries as q, relay
    b = q.get(ctx.conn, key)
    if b is None:
        raise NotFound(f"no broadcast {key}", "没有这个直播")
    r = relay.relay(ctx.cfg, ctx.conn, b)
    echo_json(r) if as_json else click.echo(f"{key}: {r['state']}, {r.get('segments', 0)} segments")


@live_group.command("replay")
@click.argument("key")
@click.option("--give-up", is_flag=True, help="Import what there is now, marked incomplete if anything is missing.")
@json_option
@pass_ctx
@domain_errors
def replay_cmd(ctx, key, give_up, as_json):
    """Backfill and import one broadcast's replay now, ignoring the link windows."""
    from edgenode.core.errors import NotFound
    from edgenode.node.live import queries as q, replay
    b = q.get(ctx.conn, key)
    if b is None:
        raise NotFound(f"no broadcast {key}", "没有这个直播")
    r = replay.replay(ctx.cfg, ctx.conn, b, give_up=give_up)
    echo_json(r) if as_json else click.echo(f"{key}: {r['state']} {r.get('message', '')}")


COMMANDS = [live_group]
