"""``edgenode update ...``: status, stage, apply, recover (docs/updates.md)."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("update")
def update_group():
    """Software updates: signed releases, installed with a health gate and rolled back on failure."""


@update_group.command("status")
@json_option
@pass_ctx
def status_cmd(ctx, as_json):
    """The running version, the staged release, the last update's outcome."""
    from edgenode.node.updates import report, state
    doc = state.load(ctx.cfg)
    out = {**report.heartbeat_section(ctx.cfg, None)["software"], "go": (doc.get("go") or {}).get("version"),
           "failed": doc.get("failed", [])}
    if as_json:
        echo_json(out)
        return
    click.echo(f"running {out['version']}; staged {out['staged'] or '-'}; hub asks for {out['go'] or '-'}")
    last = out["last_update"]
    if last:
        click.echo(f"last update to {last['version']}: {last['state']} {last.get('code', '')} {last.get('reason', '')}")


@update_group.command("stage")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@json_option
@pass_ctx
@domain_errors
def stage_cmd(ctx, path, as_json):
    """Verify and stage the release(s) at PATH (a release folder, a stick, a spool entry)."""
    from edgenode.node.updates import stage
    results = stage.stage_tree(ctx.cfg, ctx.conn, path, "cli")
    if as_json:
        echo_json(results)
    for r in [] if as_json else results:
        click.echo(f"{r['result']:9} {r.get('version', '')} {r.get('code', '')} {r.get('error', '')}".rstrip())
    if not results:
        raise click.ClickException(f"E_RELEASE_INVALID: {path}: no release.json found")
    if any(r["result"] == "refused" for r in results):
        raise SystemExit(1)


@update_group.command("apply")
@click.option("--version", help="Install only this staged version.")
@click.option("--requested", is_flag=True, help="Only if the scheduler asked (updates/apply-now), for that version "
              "(edgenode-update.service).")
@json_option
@pass_ctx
@domain_errors
def apply_cmd(ctx, version, requested, as_json):
    """Install the staged release now (the scheduler does this in updates.hours)."""
    from edgenode.node.updates import apply, jobs
    if requested:
        version = jobs.take_request(ctx.cfg)
        if version is None:  # a request a power cut left was withdrawn at boot: nothing to do
            echo_json({"state": "not requested"}) if as_json else click.echo("not requested")
            return
    r = apply.apply(ctx.cfg, version=version)
    echo_json(r) if as_json else click.echo(f"{r['state']} {r['version']} {r.get('code', '')} {r.get('reason', '')}")
    if r["state"] != "committed":
        raise SystemExit(1)


@update_group.command("recover")
@click.option("--stop", is_flag=True, help="Stop the services first (they may be running).")
@click.option("--start", is_flag=True, help="Start the services afterwards.")
@json_option
@pass_ctx
@domain_errors
def recover_cmd(ctx, stop, start, as_json):
    """After a power cut or a killed updater: put the old release back if an update was unfinished."""
    from edgenode.node.updates import apply
    r = apply.recover(ctx.cfg, start=start, stop=stop)
    echo_json(r) if as_json else click.echo(f"{r['state']} {r.get('reason', '')}")


@update_group.command("fetch")
@json_option
@pass_ctx
@domain_errors
def fetch_cmd(ctx, as_json):
    """Pull the hub's software channel now and stage what it holds."""
    from edgenode.node.updates import stage
    r = stage.fetch(ctx.cfg, ctx.conn)
    echo_json(r) if as_json else click.echo(f"{r['state']}: {[x['result'] for x in r['releases']]}")


@update_group.command("check")
@json_option
@pass_ctx
@domain_errors
def check_cmd(ctx, as_json):
    """What the scheduler's update job does, now: fetch what the hub asks for, install if it is time."""
    from edgenode.node.updates import jobs
    r = jobs.run_update(ctx.cfg, "update")
    echo_json(r) if as_json else click.echo(f"{r['state']}: {r['message']}")


COMMANDS = [update_group]
