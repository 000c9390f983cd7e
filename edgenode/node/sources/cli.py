"""``edgenode spool …`` and ``edgenode usb …``: the satellite spool and volunteers' sticks."""

from __future__ import annotations

from pathlib import Path

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx
from edgenode.node.imports.cli import ProgressBar, print_results
from edgenode.node.sources.mirror_cli import mirror_group, swarm_group, traffic_cmd


@click.group("spool")
def spool_group():
    """The satellite receiver's spool directory."""


@spool_group.command("scan")
@json_option
@pass_ctx
@domain_errors
def spool_scan(ctx, as_json):
    """Import complete bundles from the spool; report waiting and stale ones."""
    from edgenode.node.sources.satellite import scan_spool

    if not ctx.cfg.spool.dir:
        raise click.ClickException("E_SPOOL_OFF: no spool configured (set spool.dir)")
    out = scan_spool(ctx.cfg, ctx.conn, ctx.store)
    if as_json:
        echo_json(out)
    else:
        for key in ("imported", "unchanged", "waiting", "stale", "rejected"):
            for item in out[key]:
                click.echo(f"{key:9} {item['bundle']}  {item.get('summary') or item.get('reason') or item.get('error')}")
        if not any(out[k] for k in ("imported", "unchanged", "waiting", "stale", "rejected")):
            click.echo("spool: no bundles")
    if out["rejected"]:
        raise SystemExit(1)


@click.group("usb")
def usb_group():
    """USB sticks: the udev-started import and the mount-table watcher."""


@usb_group.command("import")
@click.argument("device")
@json_option
@pass_ctx
@domain_errors
def usb_import(ctx, device, as_json):
    """Import from a stick: DEVICE (sdb1: mounted read-only here) or an already mounted folder."""
    from edgenode.node.sources.usb import import_device

    bar = None if as_json else ProgressBar()
    try:
        results = import_device(ctx.cfg, ctx.conn, ctx.store, device, progress=bar)
    finally:
        if bar:
            bar.close()
    print_results(results, as_json)


@usb_group.command("mount")
@click.argument("device")
@pass_ctx
@domain_errors
def usb_mount(ctx, device):
    """Mount DEVICE (e.g. sdb1) read-only, nosuid, nodev, noexec under usb.mount_dir (refuses system disks)."""
    from edgenode.node.sources.usb import mount_device

    click.echo(mount_device(ctx.cfg, device))


@usb_group.command("unmount")
@click.argument("device")
@pass_ctx
@domain_errors
def usb_unmount(ctx, device):
    """Unmount what `usb mount DEVICE` mounted (lazily: the stick may already be gone)."""
    from edgenode.node.sources.usb import unmount_device

    unmount_device(ctx.cfg, device)


@usb_group.command("watch")
@click.option("--once", is_flag=True, help="Look once and exit (for tests and cron).")
@pass_ctx
@domain_errors
def usb_watch(ctx, once):
    """Watch the mount table under usb.media_roots and import each stick once."""
    from edgenode.node.sources.usb import watch

    def report(mountpoint, results):
        for r in results:
            click.echo(f"{mountpoint}: {Path(r.bundle).name}: {r.summary_zh()}"
                       + (f" [{r.error_code}]" if r.error_code else ""))

    watch(ctx.cfg, ctx.conn, ctx.store, once=once, on_results=report)


COMMANDS = [spool_group, usb_group, mirror_group, traffic_cmd, swarm_group]
