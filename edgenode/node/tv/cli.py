"""``edgenode tv``: the screening schedule (展播) from a shell, the same actions as /admin/tv."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("tv")
def tv_group():
    """The TV (电视) mode: playlists, screening times and what loops between them."""


@tv_group.command("playlist")
@click.argument("playlist_id")
@click.argument("resources", nargs=-1, required=True)
@click.option("--title", required=True, help="Name shown on the TV, e.g. 晚间戏曲.")
@pass_ctx
@domain_errors
def playlist(ctx, playlist_id, resources, title):
    """Create or replace a playlist: RESOURCES are catalogue ids in playing order."""
    from edgenode.node.tv.screenings import set_playlist
    p = set_playlist(ctx.conn, playlist_id, title, list(resources))
    click.echo(f"playlist {p['id']}: {len(p['items'])} items")


@tv_group.command("slot-add")
@click.argument("start")
@click.argument("end")
@click.argument("playlist_id")
@click.option("--days", default="1234567", show_default=True, help="Weekdays, 1 = Monday.")
@pass_ctx
@domain_errors
def slot_add(ctx, start, end, playlist_id, days):
    """Screen PLAYLIST_ID from START to END (HH:MM, local time)."""
    from edgenode.node.tv.screenings import add_slot
    click.echo(f"slot {add_slot(ctx.conn, start, end, playlist_id, days)} added")


@tv_group.command("slot-remove")
@click.argument("num", type=int)
@pass_ctx
@domain_errors
def slot_remove(ctx, num):
    """Remove one of this point's screening slots (its number in `edgenode tv show`)."""
    from edgenode.node.tv.screenings import remove_slot
    if not remove_slot(ctx.conn, num):
        raise click.ClickException(f"no local slot {num}")
    click.echo(f"slot {num} removed")


@tv_group.command("loop")
@click.argument("playlist_id", required=False)
@pass_ctx
@domain_errors
def loop(ctx, playlist_id):
    """Loop PLAYLIST_ID between screenings; without it, the county's choice (or the newest videos)."""
    from edgenode.node.tv.screenings import set_loop
    set_loop(ctx.conn, playlist_id)
    click.echo(f"loop: {playlist_id or '(county / newest)'}")


@tv_group.command("show")
@json_option
@pass_ctx
@domain_errors
def show(ctx, as_json):
    """The schedule and what the TV plays now."""
    from edgenode.node.tv.screenings import clock, now_playing, overview
    data = {**overview(ctx.conn), "now": now_playing(ctx.conn, clock(ctx.cfg))}
    if as_json:
        echo_json(data)
        return
    now = data["now"]
    click.echo(f"now ({now['now']}): {now['playlist']} {now['title']} [{now['why']}], {len(now['items'])} items")
    for s in data["slots"]:
        click.echo(f"  slot {s['num']}: {s['start']}-{s['end']} days {s['days']} -> {s['playlist_id']} ({s['source']})")
    for source, pid in sorted(data["loops"].items()):
        click.echo(f"  loop ({source}): {pid}")


COMMANDS = [tv_group]
