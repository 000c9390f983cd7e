"""Health commands: health, diagnose, advertise, discover."""

from __future__ import annotations

import time

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    d = time.time() - ts
    if d < 0:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) + " (in the future)"
    for unit, secs in (("d", 86400), ("h", 3600), ("min", 60)):
        if d >= secs:
            return f"{d / secs:.1f} {unit} ago"
    return f"{d:.0f} s ago"


def summary_lines(snap: dict) -> list[str]:
    """The human-readable summary (English; the admin page has the Chinese one)."""
    node, sysd, net = snap["node"] or {}, snap["system"], snap["network"]
    content, sync, sw, clk = snap["content"], snap["sync"], snap["software"], snap["clock"]
    out = [f"{node.get('name', '?')}  (node {node.get('id', '?')[:12]})"]
    if sw:
        qc = "ok" if sw["quick_check"]["ok"] else "FAILED: " + sw["quick_check"]["result"]
        out.append(f"software   edgenode {sw['version']}, config {sw['config_digest']}, database check {qc}")
    if sysd:
        c, m, d = sysd["cpu"], sysd["memory"], sysd["disk"]
        out.append(f"system     load {c['load_1m']}/{c['load_5m']}/{c['load_15m']}, cpu {c['percent']}%, "
                   f"memory {m['percent']}% of {_size(m['total_bytes'])}, up {sysd['uptime_s'] / 3600:.1f} h")
        out.append(f"disk       {d['percent']}% used, {_size(d['free_bytes'])} free on {d['mountpoint']}")
        for t in sysd["temperatures"]:
            out.append(f"temp       {t['label']}: {t['current_c']} °C")
    if net:
        gw = net["gateway"]
        out.append(f"network    gateway {gw['address']} via {gw['interface']}" if gw else "network    no default gateway")
        for itf in net["interfaces"]:
            if itf["loopback"]:
                continue
            addrs = ", ".join(a["address"] for a in itf["addresses"] if a["family"] == "ipv4") or "-"
            out.append(f"  {itf['name']:<10} {'up' if itf['up'] else 'down':<5} {addrs}")
    if content:
        r = content["resources"]
        v = content["last_verify"]
        i = content["last_import"]
        out.append(f"content    {r['visible']} visible resources, store {_size(content['store']['bytes'])}")
        out.append(f"  last verify: {_ago(v['at']) + (' ok' if v['ok'] else ' PROBLEMS') if v else 'never'}; "
                   f"last import: {_ago(i['at']) + ' ' + (i['result'] or '') if i else 'never'}")
    if sync:
        out.append(f"sync       last contact with the hub: {_ago(sync['last_contact'])}; "
                   f"outbox {sync['outbox']['batches']} batches")
        for kind, job in sync["jobs"].items():
            err = f", last error {_ago(job['last_error']['at'])}: {job['last_error']['message']}" \
                if job["last_error"] else ""
            out.append(f"  {kind:<13} tried {_ago(job['last_attempt'])}, succeeded {_ago(job['last_success'])}{err}")
    if clk:
        ntp = {True: "yes", False: "NO", None: "unknown"}[clk["ntp_synchronized"]]
        out.append(f"clock      {clk['wall_time_iso']}, NTP synchronised: {ntp} ({clk['ntp_source']}), "
                   f"boot #{clk['boot_count']}, monotonic {clk['monotonic_s']:.0f} s")
    for name, err in (snap.get("errors") or {}).items():
        out.append(f"error      {name}: {err}")
    if snap["warnings"]:
        out.append("")
        out.append("WARNINGS")
        for w in snap["warnings"]:
            out.append(f"  {w['code']} ({w['level']}): {w['message']}")
            out.append(f"      {w['message_zh']}")
    else:
        out.append("no warnings")
    return out


@click.command("health")
@json_option
@click.option("--fresh", is_flag=True, help="Bypass the caches: run the database quick_check and recount content now.")
@pass_ctx
@domain_errors
def health(ctx, as_json, fresh):
    """Show the node's health with warnings (exit status 2 when a warning is an error)."""
    from edgenode.node.health.snapshot import snapshot

    snap = snapshot(ctx.cfg, ctx.conn, fresh=fresh)
    if as_json:
        echo_json(snap)
    else:
        click.echo("\n".join(summary_lines(snap)))
    if any(w["level"] == "error" for w in snap["warnings"]):
        ctx_exit = click.get_current_context()
        ctx_exit.exit(2)


@click.command("diagnose")
@click.option("--out", "out", type=click.Path(dir_okay=True, writable=True),
              help="Where to write the .tar.gz (a directory gets a generated file name).")
@click.option("--upload", is_flag=True, help="Send it to the county hub this node is enrolled with instead.")
@pass_ctx
@domain_errors
def diagnose(ctx, out, upload):
    """Write a redacted diagnostics bundle (snapshot, config, logs, history, versions), or upload it to the hub."""
    if bool(out) == bool(upload):
        raise click.UsageError("give exactly one of --out PATH or --upload")
    if upload:
        from edgenode.node.sync import client, heartbeat

        sent = heartbeat.upload_diagnostics(ctx.cfg, ctx.conn, client.require_hub(ctx.cfg, ctx.conn))
        click.echo(f"uploaded the diagnostics bundle ({_size(sent['bytes'])}); secrets are redacted")
        return
    from edgenode.node.health.diagnostics import write

    path = write(ctx.cfg, ctx.conn, out)
    click.echo(f"wrote {path} ({_size(path.stat().st_size)}); secrets are redacted")


@click.command("advertise")
@click.option("--once", is_flag=True, help="Register, print what is advertised, then unregister and exit.")
@pass_ctx
@domain_errors
def advertise(ctx, once):
    """Advertise the portal on the LAN over mDNS until stopped (SIGTERM/Ctrl-C unregister cleanly)."""
    from edgenode.node.health import discovery

    discovery.run_advertiser(ctx.cfg, once=once, say=lambda m: click.echo(m, err=True))


@click.command("discover")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds to listen for answers.")
@click.option("--all", "show_all", is_flag=True, help="List every _http._tcp service, not only edgenode nodes.")
@json_option
@pass_ctx
@domain_errors
def discover(ctx, timeout, show_all, as_json):
    """List other edgenode nodes on the LAN (mDNS)."""
    from edgenode.node.health import discovery

    found = discovery.discover(timeout=timeout, only_edgenode=not show_all,
                               interfaces=ctx.cfg.discovery.interfaces or None)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no edgenode nodes answered within {timeout:g} s")
    for n in found:
        addrs = ", ".join(n["addresses"])
        click.echo(f"{n['name']}  http://{n['server'].rstrip('.')}:{n['port']}{n['path']}  [{addrs}]  "
                   f"node {n['node_id'] or '?'} v{n['version'] or '?'}")


COMMANDS = [health, diagnose, advertise, discover]
