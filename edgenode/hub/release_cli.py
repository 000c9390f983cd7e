"""``edgenode release ...`` (build and sign a software release) and ``edgenode hub release|rollout ...``."""

from __future__ import annotations

from pathlib import Path

import click

from edgenode.hub.cli import _hub, _when, domain_errors, echo_json, hub_group, json_option, pass_ctx


@click.group("release")
def release_group():
    """Software releases: signed bundles of one edgenode version (docs/updates.md)."""


@release_group.command("keygen")
@click.argument("out_dir", type=click.Path(file_okay=False))
@domain_errors
def keygen_cmd(out_dir):
    """Make a release key pair OUT_DIR/release.key (0600) and release.pub; keep the key off the hub."""
    from edgenode.protocol import minisign
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "release.key").exists():
        raise click.ClickException(f"E_KEY_EXISTS: {out / 'release.key'} already exists")
    sk = minisign.generate_keypair()
    minisign.write_secret_key(sk, out / "release.key")
    minisign.write_public_key(sk.public, out / "release.pub")
    click.echo(f"release key {sk.key_id_hex}: trust it at the hub with "
               f"`edgenode hub keys add {out / 'release.pub'} --channel software`")


@release_group.command("build")
@click.option("--wheel", required=True, type=click.Path(exists=True, dir_okay=False), help="edgenode-<version>.whl")
@click.option("--lock", default="requirements/node.lock", show_default=True, type=click.Path(exists=True))
@click.option("--wheelhouse", required=True, type=click.Path(exists=True, file_okay=False),
              help="Wheels of the locked dependencies (pip download --require-hashes -r the lock).")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The release key (not a content key).")
@click.option("--deb", "debs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A Debian package the version newly needs, or a security update for points with no link.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@json_option
@domain_errors
def build_cmd(wheel, lock, wheelhouse, key_path, debs, out_dir, as_json):
    """Pack and sign OUT/edgenode-<version>/ (wheel, locked dependency wheels, packages, migrations)."""
    from edgenode.core import registry
    from edgenode.protocol import minisign
    from edgenode.protocol.release import build_release
    migrations = [[m.AREA, v, name] for m in registry.schemas("main") for v, name, _ in m.MIGRATIONS]
    path = build_release(out_dir, minisign.load_secret_key(key_path), wheel=wheel, lock=lock, wheelhouse=wheelhouse,
                         debs=debs, migrations=migrations)
    echo_json({"path": str(path)}) if as_json else click.echo(f"built {path}")


@hub_group.group("release")
def hub_release():
    """Releases in the rsync tree and on sticks."""


@hub_release.command("publish")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@json_option
@pass_ctx
@domain_errors
def hub_release_publish(ctx, src, as_json):
    """Put a built release at rsync channels/software/ for the nodes' pull."""
    from edgenode.hub import releases
    r = releases.publish(ctx.cfg, src)
    echo_json(r) if as_json else click.echo(f"published release {r['version']} at {r['path']}")


@hub_group.group("rollout")
def hub_rollout():
    """Staged rollouts of a release, ring by ring (docs/updates.md)."""


@hub_rollout.command("start")
@click.argument("version")
@click.option("--ring", "rings", multiple=True, required=True, help="A ring: a count, a percentage or 'all'.")
@click.option("--pilot", "pilots", multiple=True, help="A node (with --counties: a county hub, by id or name) for "
              "the first ring (repeatable).")
@click.option("--max-fail", type=float, default=None, help="Halt when more than this share fails (default: "
              "hub.rollout_max_fail_share).")
@click.option("--counties", "--hubs", "hubs", is_flag=True,
              help="A province's rollout to its county hubs; each rolls it out to its own nodes.")
@json_option
@pass_ctx
@domain_errors
def rollout_start(ctx, version, rings, pilots, max_fail, hubs, as_json):
    """Begin a rollout of VERSION; the first ring's nodes are told at their next heartbeat (counties: report)."""
    from edgenode.core.errors import EdgenodeError
    from edgenode.hub import releases, rollout, tier_software
    share = ctx.cfg["hub.rollout_max_fail_share"] if max_fail is None else max_fail
    conn = _hub(ctx)
    if hubs:  # the counties fetch it from here: it must be published here
        if version not in releases.published(ctx.cfg):
            raise EdgenodeError("E_RELEASE_UNKNOWN", f"release {version} is not published here "
                                "(edgenode hub release publish DIR)", zh="这个软件版本还没有在本平台发布")
        pilots = tier_software.resolve_counties(conn, list(pilots))
    r = rollout.start(conn, version, list(rings), max_fail_share=share, pilots=list(pilots),
                      kind="hub" if hubs else "node", by="cli")
    what = "county hubs" if hubs else "nodes"
    echo_json(r) if as_json else click.echo(f"rollout {r['id']} of {version}: {len(r['nodes'])} {what}")


@hub_rollout.command("show")
@click.argument("rollout_id", type=int, required=False)
@click.option("--counties", "--hubs", "hubs", is_flag=True, help="List only rollouts to county hubs.")
@json_option
@pass_ctx
@domain_errors
def rollout_show(ctx, rollout_id, hubs, as_json):
    """The rollouts, or one with its nodes (or counties, with what each reported) and log."""
    from edgenode.hub import rollout, tier_software
    if rollout_id is None:
        rows = rollout.listing(_hub(ctx), kind="hub" if hubs else None)
        if as_json:
            echo_json(rows)
        for r in [] if as_json else rows:
            click.echo(f"{r['id']:4} {r['kind']:4} {r['version']:10} {r['state']:9} {_when(r['created_at'])} "
                       f"{r['reason']}")
        return
    r = rollout.describe(_hub(ctx), rollout_id)
    if r["kind"] == "hub":
        r["counties"] = tier_software.counties_of(_hub(ctx), r)
    if as_json:
        echo_json(r)
        return
    click.echo(f"rollout {r['id']} of {r['version']} to {'county hubs' if r['kind'] == 'hub' else 'nodes'}: "
               f"{r['state']} {r['reason']}")
    for m in r.get("counties") or r["nodes"]:
        extra = f" county: {m['county_state'] or '-'} hub {m['hub_version'] or '?'}" if "county_state" in m else ""
        click.echo(f"  ring {m['ring'] + 1} {m['node_id']} {m['state']:8}{extra} {m['code']} {m['detail']}")
    for x in r["log"]:
        click.echo(f"  {_when(x['at'])} {x['event']:12} ring {'' if x['ring'] is None else x['ring'] + 1} "
                   f"{x['node_id'] or ''}")


@hub_rollout.command("upstream")
@json_option
@pass_ctx
@domain_errors
def rollout_upstream(ctx, as_json):
    """At a county: what the province's rollouts asked here and how far each got."""
    from edgenode.hub import tier_release
    rows = tier_release.upstream_requests(_hub(ctx))
    if as_json:
        echo_json(rows)
    for u in [] if as_json else rows:
        click.echo(f"{u['upstream_id']:4} {u['version']:10} {u['state']:8} local {u['local_id'] or '-'} "
                   f"{_when(u['at'])} {u['code']} {u['reason']}")


@hub_rollout.command("cancel")
@click.argument("rollout_id", type=int)
@pass_ctx
@domain_errors
def rollout_cancel(ctx, rollout_id):
    """Stop telling nodes to update (those already updated stay updated)."""
    from edgenode.hub import rollout
    click.echo(rollout.cancel(_hub(ctx), rollout_id)["state"])


COMMANDS = [release_group]
