"""``edgenode hub live ...``: the county's live schedule, the HLS origin, the viewing figures."""

from __future__ import annotations

import time
from pathlib import Path

import click


from edgenode.hub.cli_kit import _hub, domain_errors, echo_json, json_option, pass_ctx

@click.group("live")
def live_group():
    """Live broadcasts: schedule (直播预告), origin (ffmpeg → HLS), figures (docs/live.md)."""


@live_group.command("schedule")
@click.option("--channel", required=True, help="A channel the county key signs for (hub.channels).")
@click.option("--id", "bid", required=True, help="The broadcast's id: lower-case letters, digits, - and _.")
@click.option("--title", required=True)
@click.option("--start", required=True, help="ISO 8601 with offset, e.g. 2026-12-07T19:30+08:00.")
@click.option("--end", required=True)
@click.option("--stream-url", required=True, help="The origin's index.m3u8 as nodes reach it.")
@click.option("--description", default="")
@click.option("--poster", default=None, help="An image URL under the same origin.")
@json_option
@pass_ctx
@domain_errors
def schedule_cmd(ctx, channel, bid, title, start, end, stream_url, description, poster, as_json):
    """Add or change one broadcast; the channel's schedule is signed again with a higher sequence number."""
    from edgenode.hub import live
    entry = {"id": bid, "title": title, "description": description, "start": start, "end": end,
             "stream_url": stream_url}
    if poster:
        entry["poster"] = poster
    r = live.add(ctx.cfg, channel, entry)
    echo_json(r) if as_json else click.echo(f"{channel} schedule #{r['seq']}: {r['broadcasts']} broadcasts")


@live_group.command("cancel")
@click.option("--channel", required=True)
@click.option("--id", "bid", required=True)
@json_option
@pass_ctx
@domain_errors
def cancel_cmd(ctx, channel, bid, as_json):
    """Cancel one broadcast (nodes drop it at their next heartbeat or stick)."""
    from edgenode.hub import live
    r = live.cancel(ctx.cfg, channel, bid)
    echo_json(r) if as_json else click.echo(f"{channel} schedule #{r['seq']}: {bid} cancelled")


@live_group.command("to-stick")
@click.argument("root", type=click.Path(file_okay=False, path_type=Path))
@pass_ctx
@domain_errors
def to_stick_cmd(ctx, root):
    """Write every signed schedule to ROOT/edgenode-bundles/edgenode-live/ for points never online."""
    from edgenode.hub import live
    click.echo(f"{live.to_stick(ctx.cfg, root)} schedules written to {root}")


@live_group.command("run")
@click.argument("key")
@click.option("--input", "source", required=True, help="A file, a device (/dev/video0), rtmp://… or srt://….")
@click.option("--input-format", help="ffmpeg's -f for the input (v4l2 for a camera).")
@click.option("--realtime/--no-realtime", default=None, help="Read a file at real-time pace (-re); default: for files.")
@click.option("--listen", is_flag=True, help="Wait for an RTMP push (ffmpeg -listen 1).")
@click.option("--copy", is_flag=True, help="The input is already H.264/AAC: no re-encoding.")
@click.option("--hls-seconds", type=int, default=2, show_default=True, help="Segment length.")
@json_option
@pass_ctx
@domain_errors
def run_cmd(ctx, key, source, input_format, realtime, listen, copy, hls_seconds, as_json):
    """Turn an input into HLS under DATA_DIR/live/KEY/ (index.m3u8 live, recording.m3u8 whole) until it ends."""
    from edgenode.hub import live
    if realtime is None:
        realtime = Path(source).is_file()
    r = live.run_origin(ctx.cfg, key, source, realtime=realtime, input_format=input_format, listen=listen,
                        copy=copy, hls_seconds=hls_seconds)
    echo_json(r) if as_json else click.echo(f"{key}: {r['segments']} segments, {r['seconds']} s in {r['dir']}")


@live_group.command("publish-recording")
@click.argument("key")
@click.option("--channel", required=True, help="The channel to publish the replay into.")
@click.option("--title", required=True, help="The broadcast's title (the replay is 直播回看：TITLE).")
@click.option("--column", default="shequ", show_default=True)
@json_option
@pass_ctx
@domain_errors
def publish_recording_cmd(ctx, key, channel, title, column, as_json):
    """The finished recording as one MP4 (-c copy) in a signed bundle, for points that are never online."""
    from edgenode.hub import live_replay
    r = live_replay.publish_recording(_hub(ctx), ctx.cfg, key, channel, title=title, column=column)
    echo_json(r) if as_json else click.echo(f"published {r['channel']} #{r['seq']} at {r['bundle']}")


@live_group.command("nginx-conf")
@click.option("--listen", default="127.0.0.1:8088", show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), required=True)
@pass_ctx
@domain_errors
def nginx_conf_cmd(ctx, listen, workdir):
    """Print an nginx.conf serving DATA_DIR/live/ at /live/ (its server block goes in the hub's site)."""
    from edgenode.hub import live
    click.echo(live.nginx_conf(live.live_dir(ctx.cfg), listen=listen, workdir=workdir), nl=False)


@live_group.command("views")
@click.option("--month", help="YYYY-MM (default: every month).")
@json_option
@pass_ctx
@domain_errors
def views_cmd(ctx, month, as_json):
    """Live views per node and broadcast (live_view events and watching time)."""
    from edgenode.hub import live
    rows = live.views(_hub(ctx), month)
    if as_json:
        return echo_json(rows)
    for r in rows:
        click.echo(f"{r['name'] or r['node_id']}\t{r['broadcast']}\t{r['views']}\t{r['seconds'] / 60:.1f} min")


@live_group.command("duty")
@click.option("--month", default=lambda: time.strftime("%Y-%m"), help="YYYY-MM (default: this month).")
@json_option
@pass_ctx
@domain_errors
def duty_cmd(ctx, month, as_json):
    """Which points showed at least one broadcast in MONTH (the once-a-month duty)."""
    from edgenode.hub import live
    rows = live.duty(_hub(ctx), month)
    if as_json:
        return echo_json(rows)
    for r in rows:
        click.echo(f"{'达标' if r['met'] else '未达标'}\t{r['township']}\t{r['name'] or r['node_id']}\t{r['broadcasts']}")


@live_group.command("report")
@click.option("--month", default=lambda: time.strftime("%Y-%m"),
              help="YYYY-MM, or YYYY for a year (default: this month).")
@json_option
@pass_ctx
@domain_errors
def report_cmd(ctx, month, as_json):
    """The live sections of the hub report: the duty per point, the views per point and broadcast."""
    from edgenode.hub import live, reports
    due = 12
    if "year" in reports.check_period(month):  # E_REPORT_PERIOD for anything else
        due = reports.months_due(month, ctx.cfg.hub.utc_offset_hours)
    sections = live.report_sections(_hub(ctx), month, live.titles(ctx.cfg), months_due=due)
    if as_json:
        return echo_json(sections)
    for s in sections:
        click.echo(f"{s['title']}\n" + "\t".join(s["headers"]))
        for row in s["rows"]:
            click.echo("\t".join(str(c) for c in row))
        click.echo()


COMMANDS = [live_group]
