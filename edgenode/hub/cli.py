"""``edgenode hub ...``: the county hub's commands (serve, enrolment, ingest, statistics, publishing, tiers)."""

from __future__ import annotations

import click

from edgenode.hub import cli_reports, cli_staff
from edgenode.hub.audit import AuditedGroup
# The shared helpers; fanout_cli and release_cli import them from here.
from edgenode.hub.cli_kit import _hub, _when, domain_errors, echo_json, json_option, pass_ctx
from edgenode.protocol import minisign


@click.group("hub", cls=AuditedGroup)
def hub_group():
    """The county hub: enrolment, ingest, fleet, statistics, publishing, tiers."""


@hub_group.command("serve")
@click.option("--host", help="Listen address (default: hub.host).")
@click.option("--port", type=int, help="Listen port (default: hub.port).")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per worker.")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of gunicorn.")
@pass_ctx
@domain_errors
def serve(ctx, host, port, workers, threads, dev):
    """Run the hub (gunicorn, as in production; --dev for Flask's server)."""
    from edgenode.hub.app import create_hub_app

    cfg = ctx.cfg
    host, port = host or cfg.hub.host, port or cfg.hub.port
    app = create_hub_app(cfg)
    click.echo(f"edgenode hub {cfg.hub.name} on http://{host}:{port}/", err=True)
    if dev:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):
        def load_config(self):
            for k, v in {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                         "worker_class": "gthread" if threads > 1 else "sync", "keepalive": 30,
                         "accesslog": None, "timeout": 120}.items():
                self.cfg.set(k, v)
            if "control_socket_disable" in self.cfg.settings:  # gunicorn 27+: no admin socket in $HOME
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    _App().run()


@hub_group.command("enroll-code")
@click.option("--township", default="", help="Assign the node enrolling with this code to a township.")
@json_option
@pass_ctx
@domain_errors
def enroll_code(ctx, township, as_json):
    """Issue a one-time enrolment code (shown once; stored only as a hash)."""
    from edgenode.hub import registry
    code = registry.new_code(_hub(ctx), township=township, days=ctx.cfg.hub.enroll_code_days)
    if as_json:
        echo_json({"code": code, "township": township, "valid_days": ctx.cfg.hub.enroll_code_days})
    else:
        click.echo(code)
        click.echo(f"On the node: edgenode enroll http://HUB:{ctx.cfg.hub.port} --code {code}", err=True)


@hub_group.command("codes")
@json_option
@pass_ctx
@domain_errors
def codes(ctx, as_json):
    """List enrolment codes (their last characters and state, never the codes)."""
    from edgenode.hub import registry
    rows = registry.list_codes(_hub(ctx))
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"…{r['hint']}  {r['state']:8} {r['township'] or '-':12} created {_when(r['created_at'])}"
                   f"  {(r['used_by'] or '')[:8]}")


@hub_group.command("nodes")
@json_option
@pass_ctx
@domain_errors
def nodes(ctx, as_json):
    """List enrolled nodes with their status and problems."""
    from edgenode.hub.fleet import fleet
    rows = fleet(_hub(ctx), ctx.cfg)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        probs = ",".join(p["rule"] for p in r["problems"]) or "-"
        click.echo(f"{r['node_id']}  {r['status']:8} {r['township'] or '-':10} {r['name'] or '-':20} "
                   f"batches≤{r['contiguous']}/{r['max_batch_no']}  heartbeat {_when(r['last_heartbeat_at'])}  {probs}")


@hub_group.command("revoke")
@click.argument("node")
@json_option
@pass_ctx
@domain_errors
def revoke(ctx, node, as_json):
    """Revoke NODE (id, id prefix or name): every later request from it is refused."""
    from edgenode.hub import registry
    row = registry.revoke(_hub(ctx), node)
    echo_json(row) if as_json else click.echo(f"revoked {row['node_id']} ({row['name']})")


@hub_group.command("request-diagnostics")
@click.argument("node")
@json_option
@pass_ctx
@domain_errors
def request_diagnostics(ctx, node, as_json):
    """Ask NODE (id, id prefix or name) to upload a diagnostics bundle with its next heartbeat."""
    from edgenode.core.errors import EdgenodeError
    from edgenode.hub import diagnostics, registry
    db = _hub(ctx)
    row = registry.find_node(db, node)
    if row.get("revoked_at"):
        raise EdgenodeError("E_NODE_REVOKED", f"node {row['node_id']} is revoked", zh="这个节点已注销。")
    out = diagnostics.request_bundle(db, row["node_id"], by="cli")
    echo_json(out) if as_json else click.echo(f"requested diagnostics from {row['node_id']} ({row['name']}); "
                                              "it uploads with its next heartbeat")


@hub_group.command("rename")
@click.argument("node")
@click.option("--name", help="New name, e.g. 某某村文化服务点.")
@click.option("--township", help="Assign to this township (乡镇).")
@json_option
@pass_ctx
@domain_errors
def rename(ctx, node, name, township, as_json):
    """Rename NODE and/or assign it to a township."""
    from edgenode.hub import registry
    if name is None and township is None:
        raise click.UsageError("give --name and/or --township")
    row = registry.rename(_hub(ctx), node, name=name, township=township)
    echo_json(row) if as_json else click.echo(f"{row['node_id']}: {row['name']} / {row['township']}")


@hub_group.command("import-logs")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@json_option
@pass_ctx
@domain_errors
def import_logs(ctx, path, as_json):
    """Ingest usage logs from a USB stick (PATH or PATH/edgenode-logs), with the network path's dedup."""
    from edgenode.hub.usb import import_logs as run
    report = run(_hub(ctx), path, offset_hours=ctx.cfg.hub.utc_offset_hours, keep=ctx.cfg.hub.heartbeat_history)
    if as_json:
        echo_json(report)
        return
    for n in report["nodes"]:
        click.echo(f"{n['node_id']}: {n['stored']} stored, {n['duplicate']} duplicate, {len(n['refused'])} refused"
                   f", contiguous {n['contiguous']}, heartbeat {'yes' if n['heartbeat'] else 'no'}")
        for r in n["refused"]:
            click.echo(f"  refused {r['file']}: {r['code']}")


@hub_group.command("set-password")
@click.argument("username")
@click.password_option(help="The password (prompted twice when omitted).")
@pass_ctx
@domain_errors
def set_password(ctx, username, password):
    """Create county staff USERNAME or change its password (dashboard login)."""
    from edgenode.hub import staff
    staff.set_password(_hub(ctx), username, password)
    click.echo(f"password set for {username}")


@hub_group.command("stats")
@click.option("--group", type=click.Choice(["node", "township", "column", "resource", "month", "day"]),
              default="node", show_default=True, help="Group figures by this.")
@click.option("--month", help="Only this month, YYYY-MM.")
@click.option("--year", help="Only this year, YYYY.")
@click.option("--township", help="Only this township.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (the dashboard's export).")
@json_option
@pass_ctx
@domain_errors
def stats_cmd(ctx, group, month, year, township, as_csv, as_json):
    """Service statistics: visits (服务人次), plays, watch hours, unique terminals."""
    from edgenode.hub import stats
    rows = stats.table(_hub(ctx), group, {"month": month, "year": year, "township": township})
    if as_csv:
        click.echo(stats.to_csv(rows, group).lstrip("\ufeff"), nl=False)
    elif as_json:
        echo_json(rows)
    else:
        keys = stats.GROUPS[group][0]
        for r in rows:
            click.echo("  ".join(str(r[k]) for k in keys) + f"  visits={r['visits']} plays={r['plays']} "
                       f"hours={r['watch_hours']} terminals={r['unique_terminals']}")


@hub_group.command("alerts")
@click.option("--evaluate", is_flag=True, help="Re-evaluate the rules now (and call the webhook).")
@json_option
@pass_ctx
@domain_errors
def alerts_cmd(ctx, evaluate, as_json):
    """Show open alerts (offline, disk, behind, clock, integrity, conflict)."""
    from edgenode.hub import alerts
    conn = _hub(ctx)
    if evaluate:
        alerts.evaluate(conn, ctx.cfg)
    rows = alerts.open_alerts(conn)
    if as_json:
        echo_json(rows)
        return
    for a in rows:
        click.echo(f"{a['rule']:10} {a['node_id'][:8]} {a['detail']}  since {_when(a['raised_at'])}")


@hub_group.command("housekeeping")
@json_option
@pass_ctx
@domain_errors
def housekeeping_cmd(ctx, as_json):
    """Periodic work (systemd timer): alert rules + webhook, trimming, the upstream report."""
    from edgenode.hub.jobs import housekeeping
    r = housekeeping(_hub(ctx), ctx.cfg)
    if as_json:
        echo_json(r)
        return
    a = r["alerts"]
    click.echo(f"alerts: {a['opened']} opened, {a['cleared']} cleared (webhook: {a['webhook'] or 'none'})")
    if "upstream" in r:
        click.echo(f"upstream: {r['upstream'].get('status')}")


@hub_group.group("upstream")
def upstream():
    """Tiers: enrol at the upstream hub and forward aggregates to it."""


@upstream.command("enroll")
@click.argument("url")
@click.option("--code", required=True, help="One-time code issued by the upstream hub.")
@pass_ctx
@domain_errors
def upstream_enroll(ctx, url, code):
    """Register this hub at the upstream hub URL."""
    from edgenode.hub import tiers
    r = tiers.enroll_upstream(_hub(ctx), ctx.cfg, url, code)
    click.echo(f"enrolled {r['hub_id']} at {r['url']} ({r['upstream_name']})")


@upstream.command("pull")
@click.argument("rsync_url", required=False)
@click.option("--trust-key", "keys", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="The upstream's minisign public key file (repeatable; default: hub.upstream_keys).")
@json_option
@pass_ctx
@domain_errors
def upstream_pull(ctx, rsync_url, keys, as_json):
    """Pull the upstream's channels (RSYNC_URL, default hub.upstream_rsync_url) and republish them.

    With neither set there is nothing to pull: says so and exits 0 (the hourly timer's case on a
    top-tier hub)."""
    from edgenode.protocol import minisign
    from edgenode.core.errors import EdgenodeError
    from edgenode.hub import publish
    rsync_url = rsync_url or ctx.cfg.hub.upstream_rsync_url
    keys = keys or tuple(ctx.cfg.hub.upstream_keys)
    if not rsync_url:
        echo_json({"status": "not configured"}) if as_json else \
            click.echo("no upstream to pull from (hub.upstream_rsync_url is empty)")
        return
    if not keys:
        raise EdgenodeError("E_NO_UPSTREAM_KEYS", "no upstream public key: give --trust-key or set hub.upstream_keys",
                            zh="没有上级中心的公钥，无法校验内容。")
    r = publish.pull_upstream(_hub(ctx), ctx.cfg, rsync_url, trusted=[minisign.load_public_key(k) for k in keys])
    if as_json:
        echo_json(r)
        return
    for b in r["republished"]:
        click.echo(f"republished {b['channel']} #{b['seq']}")
    for b in r["refused"]:
        click.echo(f"refused {b['bundle']}: {b['code']}")
    click.echo(f"{r['present']} already present")


@upstream.command("forward")
@json_option
@pass_ctx
@domain_errors
def upstream_forward(ctx, as_json):
    """Send the aggregates changed since the last acknowledged report."""
    from edgenode.hub import tiers
    r = tiers.forward(_hub(ctx), ctx.cfg)
    echo_json(r) if as_json else click.echo(f"report {r['report_no']}: {r['status']}")


COMMANDS = [hub_group]
for _command in [*cli_staff.COMMANDS, *cli_reports.COMMANDS]:  # `hub staff ...`, `hub audit`, `hub report`
    hub_group.add_command(_command)

from edgenode.hub.contrib_cli import contrib_group  # noqa: E402  (villagers' works: hub/contrib*.py)

hub_group.add_command(contrib_group)


@hub_group.command("publish")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--channel", help="Channel to publish into (required unless SRC_DIR is a signed bundle).")
@click.option("--seq", type=int, help="Sequence number (default: the next one).")
@click.option("--column", default="pushi", show_default=True, help="Column for files resources.json does not place.")
@click.option("--signed", is_flag=True, help="SRC_DIR is a bundle signed upstream: republish it unchanged.")
@json_option
@pass_ctx
@domain_errors
def publish_cmd(ctx, src_dir, channel, seq, column, signed, as_json):
    """Build and sign a bundle with the county key into the rsync tree (or republish a signed one)."""
    from edgenode.hub import publish
    if signed:
        r = publish.accept_signed(_hub(ctx), ctx.cfg, src_dir)
    else:
        if not channel:
            raise click.UsageError("give --channel")
        r = publish.publish(_hub(ctx), ctx.cfg, src_dir, channel, seq=seq, default_column=column)
    echo_json(r) if as_json else click.echo(f"published {r['channel']} #{r['seq']} at {r['bundle']}")


@hub_group.command("usb-tree")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
@click.option("--all", "all_seqs", is_flag=True, help="Every published sequence, not just the latest.")
@json_option
@pass_ctx
@domain_errors
def usb_tree_cmd(ctx, path, channels, all_seqs, as_json):
    """Write the published bundles to PATH/edgenode-bundles/ for a volunteer's USB stick."""
    from edgenode.hub import publish
    r = publish.usb_tree(_hub(ctx), ctx.cfg, path, channels=list(channels) or None, all_seqs=all_seqs)
    if as_json:
        echo_json(r)
        return
    for b in r["bundles"]:
        click.echo(f"{b['status']:8} {b['bundle_dir']}")
    click.echo(f"→ {r['path']}")


@hub_group.command("key")
@pass_ctx
@domain_errors
def key_cmd(ctx):
    """Print the county's public signing key (nodes trust it: edgenode trust add)."""
    from edgenode.hub import publish
    click.echo(publish.county_public_key_path(ctx.cfg).read_text(), nl=False)


@hub_group.group("keys")
def keys_group():
    """The county key and the signed key lists every node follows (rotation, revocation)."""


@keys_group.command("show")
@json_option
@pass_ctx
@domain_errors
def keys_show(ctx, as_json):
    """The current county key, its channels and the key lists issued so far."""
    from edgenode.hub import keychain
    d = keychain.describe(ctx.cfg)
    if as_json:
        echo_json(d)
        return
    click.echo(f"county key {d['county_key']} for {', '.join(d['channels'])}")
    for x in d["keylists"]:
        added = ", ".join(minisign.parse_public_key(k["public_key"]).key_id_hex for k in x["keys"] or [])
        click.echo(f"  #{x['seq']}: add {added or '-'}; revoke {', '.join(x['revoke'] or []) or '-'}")


@keys_group.command("rotate")
@json_option
@pass_ctx
@domain_errors
def keys_rotate(ctx, as_json):
    """Replace the county key; nodes switch at their next heartbeat or stick."""
    from edgenode.hub import keychain
    r = keychain.rotate(ctx.cfg)
    echo_json(r) if as_json else click.echo(f"county key {r['old_key']} → {r['new_key']} (key list #{r['seq']})")


@keys_group.command("add")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", "channels", multiple=True, help="Only these channels (default: all of hub.channels).")
@json_option
@pass_ctx
@domain_errors
def keys_add(ctx, public_key, channels, as_json):
    """Have every node trust another publisher's key (e.g. the province's)."""
    from edgenode.hub import keychain
    r = keychain.add(ctx.cfg, public_key, list(channels) or None)
    echo_json(r) if as_json else click.echo(f"key {r['key']} for {', '.join(r['channels'])} (key list #{r['seq']})")


@keys_group.command("revoke")
@click.argument("key_id")
@json_option
@pass_ctx
@domain_errors
def keys_revoke(ctx, key_id, as_json):
    """Withdraw a publisher key from every node."""
    from edgenode.hub import keychain
    r = keychain.revoke(ctx.cfg, key_id)
    echo_json(r) if as_json else click.echo(f"revoked {r['revoked']} (key list #{r['seq']})")


@hub_group.command("rsyncd-conf")
@click.option("--user", help="uid the daemon serves as (default: the owner of the published tree).")
@click.option("--group", help="gid the daemon serves as (default: the tree's group).")
@pass_ctx
@domain_errors
def rsyncd_conf_cmd(ctx, user, group):
    """Print an rsyncd.conf for the hub's read-only content module (from [hub] settings)."""
    from edgenode.hub import publish
    click.echo(publish.rsyncd_conf(ctx.cfg, user, group), nl=False)


from edgenode.hub.problems_cli import counties_cmd, problems_group  # noqa: E402

hub_group.add_command(problems_group)
hub_group.add_command(counties_cmd)


def _mount_live() -> None:
    from edgenode.hub.live_cli import live_group
    hub_group.add_command(live_group)


_mount_live()
