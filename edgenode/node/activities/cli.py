"""Activities, campaigns, feedback and privacy commands: the admin pages' actions from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx

CLI_TERMINAL = "cli"


def _out(data, as_json: bool, text: str) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo(text)


@click.group("activity")
def activity_group():
    """Activities and bookings (活动预约): publish, approve, cancel, check in, export."""


@activity_group.command("create")
@click.option("--title", required=True, help="Title as villagers see it.")
@click.option("--start", required=True, help="Start, local time: '2026-12-01 19:30'.")
@click.option("--end", required=True, help="End, local time.")
@click.option("--capacity", required=True, type=int, help="Number of seats.")
@click.option("--place", default="", help="Where it happens.")
@click.option("--description", default="", help="Longer description.")
@click.option("--audit/--no-audit", default=False, show_default=True, help="Bookings wait for approval (待审核).")
@click.option("--resource", "resource_id", default=None, help="Catalogue id of a cached recording to screen.")
@json_option
@pass_ctx
@domain_errors
def create(ctx, title, start, end, capacity, place, description, audit, resource_id, as_json):
    """Publish an activity at this point."""
    from edgenode.node.activities.queries import create_activity

    a = create_activity(ctx.conn, {"title": title, "start": start, "end": end, "capacity": capacity, "place": place,
                                   "description": description, "audit": audit, "resource_id": resource_id},
                        source="cli")
    _out(a, as_json, f"created {a['id']}: {a['title']} {a['start']}-{a['end']} ({a['capacity']} seats)")


@activity_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also ended and cancelled activities.")
@json_option
@pass_ctx
@domain_errors
def list_(ctx, show_all, as_json):
    """List upcoming activities with booked seats."""
    from edgenode.node.activities.queries import list_activities

    rows = list_activities(ctx.conn, upcoming=not show_all)
    _out(rows, as_json, "\n".join(f"{a['id']}  {a['start']}  {a['booked']}/{a['capacity']}  {a['title']}"
                                  + ("  [cancelled]" if a["cancelled_at"] else "") for a in rows) or "no activities")


@activity_group.command("bookings")
@click.argument("activity_id", required=False)
@click.option("--status", type=click.Choice(["pending", "approved", "cancelled", "checked_in"]))
@json_option
@pass_ctx
@domain_errors
def bookings(ctx, activity_id, status, as_json):
    """List bookings (names and phone numbers masked)."""
    from edgenode.node.activities.queries import get_activity, list_bookings

    if activity_id:
        get_activity(ctx.conn, activity_id)
    rows = list_bookings(ctx.conn, activity_id, status=status)
    _out(rows, as_json, "\n".join(f"{b['order_id']}  {b['status_zh']}  {b['seats']}  {b['name']}  {b['phone']}  "
                                  f"{b['activity_title']}" for b in rows) or "no bookings")


@activity_group.command("approve")
@click.argument("order_id")
@json_option
@pass_ctx
@domain_errors
def approve(ctx, order_id, as_json):
    """Approve a pending booking (待审核 → 已审核)."""
    from edgenode.node.activities.queries import approve as do

    b = do(ctx.conn, ctx.cfg, order_id)
    _out(b, as_json, f"{b['order_id']}: {b['status']}")


@activity_group.command("cancel")
@click.argument("order_id")
@json_option
@pass_ctx
@domain_errors
def cancel(ctx, order_id, as_json):
    """Cancel a booking and free its seats."""
    from edgenode.node.activities.queries import cancel as do

    b = do(ctx.conn, ctx.cfg, order_id)
    _out(b, as_json, f"{b['order_id']}: {b['status']}")


@activity_group.command("cancel-activity")
@click.argument("activity_id")
@json_option
@pass_ctx
@domain_errors
def cancel_activity(ctx, activity_id, as_json):
    """Cancel a whole activity and its open bookings."""
    from edgenode.node.activities.queries import cancel_activity as do

    n = do(ctx.conn, activity_id)
    _out({"activity": activity_id, "bookings_cancelled": n}, as_json, f"cancelled {activity_id}; {n} booking(s)")


@activity_group.command("checkin")
@click.argument("code")
@click.option("--activity", "activity_id", help="Accept only codes of this activity.")
@json_option
@pass_ctx
@domain_errors
def checkin(ctx, code, activity_id, as_json):
    """Check a booking in by its 8-digit pickup code (取票码)."""
    from edgenode.node.activities.queries import check_in

    b = check_in(ctx.conn, ctx.cfg, code, activity_id=activity_id)
    _out(b, as_json, f"checked in {b['order_id']}: {b['seats']} seat(s), {b['activity_title']}")


@activity_group.command("export")
@click.argument("activity_id", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@pass_ctx
@domain_errors
def export(ctx, activity_id, output):
    """Export bookings as CSV (UTF-8 with BOM; names and phones masked)."""
    from edgenode.node.activities.queries import export_csv, get_activity

    if activity_id:
        get_activity(ctx.conn, activity_id)
    text = export_csv(ctx.conn, activity_id)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@click.group("campaign")
def campaign_group():
    """Campaigns with voting (评选/点赞): define, show counts, fetch the county ranking."""


@campaign_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_ctx
@domain_errors
def campaign_create(ctx, file, as_json):
    """Create a local campaign from a JSON file {id, title, rules, start, end, daily_limit, items: [...]}."""
    from edgenode.node.campaigns.queries import create_campaign
    from edgenode.core.errors import EdgenodeError

    try:
        doc = json.loads(Path(file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgenodeError("E_CAMPAIGN_INVALID", f"{file}: not JSON: {e}") from None
    c = create_campaign(ctx.conn, ctx.cfg, doc)
    _out(c, as_json, f"created campaign {c['id']}: {c['title']} ({len(c['items'])} items)")


@campaign_group.command("list")
@json_option
@pass_ctx
@domain_errors
def campaign_list(ctx, as_json):
    """List campaigns."""
    from edgenode.node.campaigns.queries import list_campaigns

    rows = list_campaigns(ctx.conn)
    _out(rows, as_json, "\n".join(f"{c['id']}  {c['state']}  {c['start']} - {c['end']}  {c['title']}"
                                  for c in rows) or "no campaigns")


@campaign_group.command("show")
@click.argument("campaign_id")
@json_option
@pass_ctx
@domain_errors
def campaign_show(ctx, campaign_id, as_json):
    """Show a campaign's items, local vote counts and the last county ranking."""
    from edgenode.node.campaigns.queries import get_campaign

    c = get_campaign(ctx.conn, campaign_id)
    lines = [f"{c['title']} ({c['state']}), local votes: {c['local_total']}"]
    lines += [f"  {i['item_id']}  {i['votes']}  {i['title']}" for i in c["items"]]
    if c["county"]:
        lines.append(f"county ranking as of {c['county']['as_of']}:")
        lines += [f"  {r['rank']}. {r['title']}  {r['votes']}" for r in c["county"]["items"]]
    _out(c, as_json, "\n".join(lines))


@campaign_group.command("vote")
@click.argument("campaign_id")
@click.argument("item_id")
@click.option("--terminal", default=CLI_TERMINAL, show_default=True, help="Terminal id the vote counts against.")
@json_option
@pass_ctx
@domain_errors
def campaign_vote(ctx, campaign_id, item_id, terminal, as_json):
    """Cast a vote (e.g. for a villager without a device), within the same daily limit."""
    from edgenode.node.campaigns.queries import vote

    v = vote(ctx.conn, campaign_id, item_id, terminal=terminal)
    _out(v, as_json, f"voted for {v['item']}; {v['left']} vote(s) left today on {terminal}")


@campaign_group.command("fetch-ranking")
@json_option
@pass_ctx
@domain_errors
def campaign_fetch(ctx, as_json):
    """Fetch the county-wide ranking from the hub (signed request)."""
    from edgenode.node.campaigns.ranking import fetch_rankings

    r = fetch_rankings(ctx.cfg, ctx.conn)
    _out(r, as_json, f"stored rankings for {len(r['stored'])} campaign(s)")


@campaign_group.command("hub-define")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", default="", help="The bundle channel it is published in: ids become CHANNEL.ID as on nodes.")
@json_option
@pass_ctx
@domain_errors
def campaign_hub_define(ctx, file, channel, as_json):
    """At the county hub: record a campaign's titles and window (the same JSON as the bundle entry)."""
    from edgenode.node.campaigns.queries import campaign_fields
    from edgenode.core.errors import EdgenodeError
    from edgenode.hub import tally
    from edgenode.hub.database import open_hub

    try:
        doc = json.loads(Path(file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgenodeError("E_CAMPAIGN_INVALID", f"{file}: not JSON: {e}") from None
    f = campaign_fields(doc, default_limit=ctx.cfg["campaigns.daily_votes"])
    cid = f"{channel}.{f['id']}" if channel else f["id"]
    hconn = open_hub(ctx.cfg)
    try:
        tally.define_campaign(hconn, cid, f["title"], f["start_at"], f["end_at"],
                              {i["item_id"]: i["title"] for i in f["items"]})
    finally:
        hconn.close()
    _out({"campaign": cid}, as_json, f"defined {cid} at the hub")


@campaign_group.command("hub-tally")
@click.argument("campaign_id")
@json_option
@pass_ctx
@domain_errors
def campaign_hub_tally(ctx, campaign_id, as_json):
    """At the county hub: the county-wide ranking of a campaign, from the ingested batches."""
    from edgenode.hub import tally
    from edgenode.hub.database import open_hub

    hconn = open_hub(ctx.cfg)
    try:
        r = tally.ranking(hconn, campaign_id)
    finally:
        hconn.close()
    lines = [f"{r['title']}: {r['total']} votes from {r['nodes']} node(s)"]
    lines += [f"  {i['rank']}. {i['title']}  {i['votes']}" for i in r["items"]]
    if r["outside_window"]:
        lines.append(f"  ({r['outside_window']} vote(s) stamped outside the window not counted)")
    _out(r, as_json, "\n".join(lines))


@click.group("feedback")
def feedback_group():
    """Villagers' requests and feedback recorded at this point."""


@feedback_group.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@pass_ctx
@domain_errors
def feedback_list(ctx, limit, as_json):
    """List the newest requests and feedback."""
    from edgenode.node.feedback.queries import recent

    rows = recent(ctx.conn, limit=limit)
    _out(rows, as_json, "\n".join(f"{r['time']}  {r['kind']}  {r['resource_id'] or '-'}  {r['rating'] or ''}  "
                                  f"{r['text']}" for r in rows) or "nothing yet")


@click.group("privacy")
def privacy_group():
    """Personal data of bookings: delete it after the retention period."""


@privacy_group.command("purge")
@click.option("--vacuum", is_flag=True, help="VACUUM even if nothing was due (finish an interrupted purge).")
@json_option
@pass_ctx
@domain_errors
def purge(ctx, vacuum, as_json):
    """Delete names and phone numbers of bookings past activities.retention_days, then VACUUM."""
    from edgenode.node.activities.privacy import purge as do

    r = do(ctx.cfg, ctx.conn, force_vacuum=vacuum)
    _out(r, as_json, f"purged contact details of {r['bookings']} booking(s) in {r['activities']} activity(ies)"
                     + ("; database vacuumed" if r["vacuumed"] else ""))


COMMANDS = [activity_group, campaign_group, feedback_group, privacy_group]
