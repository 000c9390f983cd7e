"""Storage commands: status, eviction, subscriptions, pins, requests; idle-time transcoding."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


def _mb(n) -> str:
    return "-" if n is None else f"{n / 1024 ** 2:.1f} MB"


@click.group("storage")
def storage():
    """Quota, eviction, channel subscriptions, pins and villagers' requests."""


@storage.command("status")
@json_option
@pass_ctx
@domain_errors
def status_cmd(ctx, as_json):
    """Show store usage against the quota and floor, subscriptions and open requests."""
    from edgenode.node.storage import quota, requests, state, subscriptions

    state.reconcile(ctx.conn)
    data = {"store": quota.status(ctx.conn, ctx.store, ctx.cfg),
            "subscriptions": subscriptions.listing(ctx.conn, ctx.cfg),
            "requests": requests.listing(ctx.conn)}
    if as_json:
        echo_json(data)
        return
    s = data["store"]
    quota_txt = f"{_mb(s['quota_bytes'])} ({s['quota_percent']}% used)" if s["quota_bytes"] else "none"
    click.echo(f"store: {_mb(s['used_bytes'])} used; quota {quota_txt}; disk free {_mb(s['disk_free_bytes'])} "
               f"(floor {_mb(s['floor_bytes'])}); headroom {_mb(s['headroom_bytes'])}")
    click.echo(f"pinned resources: {s['pinned']}; on request (可预约下载): {s['on_request']}")
    for c in data["subscriptions"]:
        click.echo(f"  channel {c['channel']}: {c['mode']} ({c['from']}), {c['resources']} resources, "
                   f"{_mb(c['bytes'])}")
    for r in data["requests"]:
        click.echo(f"  requested {r['requests']}x: {r['resource_id']}  {r['title']}")


@storage.command("evict")
@click.option("--bytes", "needed", type=click.IntRange(min=0), default=0,
              help="Make room for this many more bytes (default: just get under the limits).")
@click.option("--dry-run", is_flag=True, help="Only show what would be evicted, in order.")
@json_option
@pass_ctx
@domain_errors
def evict_cmd(ctx, needed, dry_run, as_json):
    """Evict files per policy until the store is under its quota and above the floor."""
    from edgenode.node.storage import quota

    p = quota.evict_now(ctx.conn, ctx.store, ctx.cfg, needed, dry_run=dry_run)
    if as_json:
        echo_json(p.as_dict())
        return
    if not p.victims:
        click.echo(f"nothing to evict: {_mb(p.to_free)} to free")
        return
    verb = "would evict" if dry_run else "evicted"
    for v in p.victims:
        click.echo(f"{verb} [{v.reason}] {v.resource_id or v.sha256[:16]}  {_mb(v.size)}  {v.title}")
    click.echo(f"{verb} {_mb(p.freeing)} (needed {_mb(p.to_free)})")


@storage.command("subscribe")
@click.argument("channel")
@click.argument("mode", type=click.Choice(["always", "on_demand", "never", "config"]))
@pass_ctx
@domain_errors
def subscribe_cmd(ctx, channel, mode):
    """Set CHANNEL to always (pinned), on_demand or never; 'config' drops the override."""
    from edgenode.node.storage import subscriptions

    if mode == "config":
        subscriptions.clear_override(ctx.conn, channel)
    else:
        subscriptions.set_mode(ctx.conn, channel, mode)
    click.echo(f"{channel}: {subscriptions.mode(ctx.conn, ctx.cfg, channel)}")


@storage.command("pin")
@click.argument("resource_id")
@click.option("--unpin", is_flag=True, help="Remove the pin instead.")
@pass_ctx
@domain_errors
def pin_cmd(ctx, resource_id, unpin):
    """Pin RESOURCE_ID so it is never evicted (or --unpin)."""
    from edgenode.node.storage import state

    state.set_pin(ctx.conn, resource_id, not unpin)
    click.echo(f"{resource_id}: {'unpinned' if unpin else 'pinned'}")


@storage.command("requests")
@click.option("--all", "include_all", is_flag=True, help="Include fulfilled requests.")
@json_option
@pass_ctx
@domain_errors
def requests_cmd(ctx, include_all, as_json):
    """List villagers' requests for files not on this node."""
    from edgenode.node.storage import requests, state

    state.reconcile(ctx.conn)
    rows = requests.listing(ctx.conn, include_fulfilled=include_all)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no requests")
    for r in rows:
        click.echo(f"{r['state']:9} {r['requests']:3}x  {r['resource_id']}  {r['title']}")


@click.group("transcode")
def transcode():
    """Idle-time conversion of legacy formats to H.264/AAC MP4."""


@transcode.command("run")
@click.option("--force-window", is_flag=True, help="Run now even outside transcode.idle_hours.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many files.")
@json_option
@pass_ctx
@domain_errors
def transcode_run(ctx, force_window, max_jobs, as_json):
    """Transcode queued files one at a time (only inside the idle hours unless forced)."""
    from edgenode.node.storage import transcode as tc

    result = tc.run(ctx.conn, ctx.store, ctx.cfg, force_window=force_window, max_jobs=max_jobs)
    if as_json:
        echo_json(result)
        return
    for rid in result["done"]:
        click.echo(f"transcoded {rid}")
    for f in result["failed"]:
        click.echo(f"failed {f['id']}: {f['code']}: {f['error']}")
    click.echo(f"{result['ran']} job(s); stopped: {result['reason']}")


@transcode.command("status")
@json_option
@pass_ctx
@domain_errors
def transcode_status(ctx, as_json):
    """Show the transcode queue, running and failed jobs."""
    from edgenode.node.storage import transcode as tc

    st = tc.status(ctx.conn, ctx.cfg)
    if as_json:
        echo_json(st)
        return
    window = ", ".join(st["idle_hours"]) or "(none)"
    click.echo(f"enabled: {st['enabled']}; idle hours: {window}; idle now: {st['idle_now']}")
    click.echo(f"queued: {len(st['queue'])}")
    for i in st["queue"]:
        click.echo(f"  {i['id']}  {i['codecs']}  {i['title']}")
    for j in st["running"]:
        click.echo(f"running: {j['resource_id']} (pid {j['pid']})")
    for j in st["failed"]:
        click.echo(f"failed ({j['attempts']}x): {j['resource_id']}: {j['error']}")


COMMANDS = [storage, transcode]
