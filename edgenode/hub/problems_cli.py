"""``edgenode hub problems``: the dashboard's problem list, and acknowledging or snoozing a problem."""

from __future__ import annotations


import click


from edgenode.hub.cli_kit import _hub, _when, domain_errors, echo_json, json_option, pass_ctx

@click.group("problems", invoke_without_command=True)
@json_option
@click.pass_context
def problems_group(click_ctx, as_json):
    """What needs doing, most severe first (as on the dashboard)."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(problems_list, as_json=as_json)


@problems_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list acknowledged and snoozed problems.")
@json_option
@pass_ctx
@domain_errors
def problems_list(ctx, as_json, show_all=False):
    """List open problems: kind, node, township, since, what is wrong."""
    from edgenode.hub import problems
    p = problems.problem_list(_hub(ctx), ctx.cfg)
    shown = p["open"] + (p["handled"] if show_all else [])
    if as_json:
        echo_json([{k: e[k] for k in ("kind", "subject", "node_id", "name", "township", "since", "detail", "action",
                                      "note")} for e in shown])
        return
    for e in shown:
        note = f"  [{e['note']['action']} by {e['note']['by_staff']}: {e['note']['reason']}]" if e["note"] else ""
        click.echo(f"{e['kind']:9} {e['node_id'][:8]}  {e['township'] or '-'}  {e['name']}  since {_when(e['since'])}"
                   f"  {e['detail']}{note}")
    click.echo(f"{len(p['open'])} open, {len(p['handled'])} acknowledged or snoozed", err=True)


def _note(ctx, node, kind, subject, reason, action, hours, by, as_json):
    from edgenode.hub import problems, registry
    conn = _hub(ctx)
    node_id = registry.find_node(conn, node)["node_id"]
    r = problems.note(conn, ctx.cfg, node_id, kind, subject, action=action, reason=reason, by=by, hours=hours)
    echo_json(r) if as_json else click.echo(f"{action} {kind} at {node_id[:8]}"
                                            + (f" until {_when(r['until'])}" if r["until"] else ""))


_NODE = click.argument("node")
_KIND = click.argument("kind")
_OPTS = [click.option("--subject", default="", help="The channel, for a 'behind' problem."),
         click.option("--reason", required=True, help="Why (shown to the other staff)."),
         click.option("--by", default="cli", show_default=True, help="Who acknowledges.")]


def _opts(fn):
    for o in reversed(_OPTS):
        fn = o(fn)
    return fn


@problems_group.command("ack")
@_NODE
@_KIND
@_opts
@json_option
@pass_ctx
@domain_errors
def problems_ack(ctx, node, kind, subject, reason, by, as_json):
    """Acknowledge NODE's problem KIND (offline, late, disk, ...): it stays listed as being handled until it ends."""
    _note(ctx, node, kind, subject, reason, "ack", None, by, as_json)


@problems_group.command("snooze")
@_NODE
@_KIND
@click.option("--hours", type=float, default=24, show_default=True, help="Hide it for this long (at most 30 days).")
@_opts
@json_option
@pass_ctx
@domain_errors
def problems_snooze(ctx, node, kind, hours, subject, reason, by, as_json):
    """Snooze NODE's problem KIND for --hours."""
    _note(ctx, node, kind, subject, reason, "snooze", hours, by, as_json)


@click.command("counties")
@json_option
@pass_ctx
@domain_errors
def counties_cmd(ctx, as_json):
    """A provincial hub's counties: their problems first, then one line per county (as on /province/)."""
    from edgenode.hub import province
    v = province.counties(_hub(ctx), ctx.cfg)
    if as_json:
        echo_json(v)
        return
    for p in v["problems"]:
        click.echo(f"{p['kind']:9} {p['node_id'][:8]}  {p['name']}  since {_when(p['since'])}  {p['detail']}")
    for c in v["rows"]:
        b = c["brief"] or {}
        click.echo(f"{c['node_id'][:8]}  {c['name']}  nodes {c['nodes']}  offline {b.get('offline', '-')}  "
                   f"late {b.get('late', '-')}  visits this month {c['visits_month']}  last report {_when(c['last_batch_at'])}")
