"""Bundle commands: keys, build/sign/verify, the trust store, import, spool and USB."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from edgenode.cli import domain_errors, echo_json, json_option, pass_ctx


def _fmt(n: int) -> str:
    from edgenode.bundles.history import human_bytes
    return human_bytes(n)


class _Bar:
    """A click progress bar per bundle, in bytes; files shown in the label."""

    def __init__(self):
        self.bar = None
        self.shown = 0

    def __call__(self, p):
        if p.phase == "copy" and self.bar is None and p.bytes_total:
            self.bar = click.progressbar(length=p.bytes_total, label=Path(p.bundle).name, file=sys.stderr,
                                         show_pos=False, item_show_func=lambda _: None)
            self.bar.__enter__()
            self.shown = 0
        if self.bar is not None:
            self.bar.label = f"{Path(p.bundle).name} [{p.files_done}/{p.files_total} files]"
            if p.bytes_done > self.shown:
                self.bar.update(p.bytes_done - self.shown)
                self.shown = p.bytes_done
            if p.phase in ("committed", "done"):
                self.close()

    def close(self):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _print_results(results, as_json) -> None:
    if as_json:
        echo_json([r.as_dict() for r in results])
    else:
        for r in results:
            name = Path(r.bundle).name
            if r.ok:
                click.echo(f"{name}: {r.result} ({r.channel} #{r.seq}): {r.added} added, {r.updated} updated, "
                           f"{r.withdrawn} withdrawn, {r.files_copied} files copied ({_fmt(r.bytes_copied)}), "
                           f"{r.files_skipped} already present")
                click.echo(f"  {r.summary_zh()}")
            else:
                click.echo(f"{name}: FAILED {r.error_code}: {r.error}", err=True)
            for w in r.warnings:
                click.echo(f"  warning {w}", err=True)
    if any(not r.ok for r in results):
        raise SystemExit(1)


# -- keys ------------------------------------------------------------------------
@click.group("keys")
def keys_group():
    """Publisher signing keys (minisign format)."""


@keys_group.command("generate")
@click.option("--secret-key", "secret_path", type=click.Path(dir_okay=False), default="edgenode.key",
              show_default=True, help="Where to write the secret key (mode 0600; keep it offline).")
@click.option("--public-key", "public_path", type=click.Path(dir_okay=False), default="edgenode.pub",
              show_default=True, help="Where to write the public key (give this to nodes: `trust add`).")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@domain_errors
def keys_generate(secret_path, public_path, force):
    """Generate an Ed25519 key pair usable by edgenode and by the stock minisign tool."""
    from edgenode.bundles import minisign

    for p in (secret_path, public_path):
        if Path(p).exists() and not force:
            raise click.ClickException(f"E_EXISTS: {p} exists; use --force to overwrite")
    sk = minisign.generate_keypair()
    minisign.write_secret_key(sk, secret_path)
    minisign.write_public_key(sk.public, public_path)
    click.echo(f"key {sk.key_id_hex}: secret {secret_path}, public {public_path}")


# -- bundles ---------------------------------------------------------------------
@click.group("bundle")
def bundle_group():
    """Build, sign and verify content bundles."""


def _next_seq(out: Path, channel: str) -> int:
    seqs = [int(m.group(1)) for p in out.glob(f"{channel}-*") if (m := re.fullmatch(rf"{channel}-(\d+)", p.name))]
    return max(seqs, default=0) + 1


@bundle_group.command("build")
@click.argument("src_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--channel", required=True, help="Channel to publish to, e.g. sannong.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Where to write the bundle.")
@click.option("--seq", type=click.IntRange(min=1), help="Sequence number (default: one more than the last in --out).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="Secret key to sign with.")
@click.option("--key-id", help="Key id to name in the manifest when signing later (e.g. with minisign).")
@click.option("--column", default="pushi", show_default=True, help="Column for files without resources.json entries.")
@click.option("--withdraw", multiple=True, help="A resource id of this channel to withdraw (repeatable).")
@click.option("--expires", help="ISO 8601 expiry (nodes only warn after it).")
@click.option("--legacy", is_flag=True, help="Sign in minisign's legacy (non-prehashed) form.")
@domain_errors
def bundle_build(src_dir, channel, out_dir, seq, key_path, key_id, column, withdraw, expires, legacy):
    """Build a bundle from SRC_DIR (metadata from SRC_DIR/resources.json when present)."""
    from edgenode.bundles import minisign
    from edgenode.bundles.build import build_bundle

    if not key_path and not key_id:
        raise click.UsageError("give --key to sign now, or --key-id to sign later")
    sk = minisign.load_secret_key(key_path) if key_path else None
    out = Path(out_dir)
    seq = seq or _next_seq(out, channel)
    bundle = build_bundle(Path(src_dir), channel, seq, out, secret_key=sk, key_id=key_id, withdraw=withdraw,
                          expires=expires, default_column=column, prehash=not legacy)
    click.echo(f"built {bundle}{'' if sk else ' (unsigned: run `edgenode bundle sign`)'}")


@bundle_group.command("sign")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--legacy", is_flag=True, help="Sign in minisign's legacy (non-prehashed) form.")
@domain_errors
def bundle_sign(bundle_dir, key_path, legacy):
    """Sign (or re-sign) a bundle's manifest.json."""
    from edgenode.bundles import minisign
    from edgenode.bundles.build import sign_manifest

    sig = sign_manifest(bundle_dir, minisign.load_secret_key(key_path), prehash=not legacy)
    click.echo(f"signed: {sig}")


@bundle_group.command("verify")
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--pubkey", type=click.Path(exists=True, dir_okay=False),
              help="Check against this public key instead of the node's trust store.")
@json_option
@pass_ctx
@domain_errors
def bundle_verify(ctx, bundle_dir, pubkey, as_json):
    """Check a bundle's signature, manifest and every file's size and hash, without importing."""
    from edgenode.bundles.verify import verify_bundle

    report = verify_bundle(Path(bundle_dir), conn=None if pubkey else ctx.conn, pubkey=pubkey,
                           max_manifest=ctx.cfg.bundles.max_manifest_kb * 1024)
    if as_json:
        echo_json(report)
    else:
        click.echo(f"OK: {report['channel']} #{report['seq']}, {report['resources']} resources, "
                   f"{_fmt(report['bytes'])}, signed by {report['key_id']} ({report['algorithm']})")
        for w in report["warnings"]:
            click.echo(f"warning {w}", err=True)


# -- trust -----------------------------------------------------------------------
@click.group("trust")
def trust_group():
    """The trust store: which publisher keys may publish to which channels."""


@trust_group.command("add")
@click.argument("pubkey_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--channel", "channels", multiple=True, required=True, help="Channel the key may publish to (repeatable).")
@click.option("--comment", default="", help="Who this key belongs to.")
@pass_ctx
@domain_errors
def trust_add(ctx, pubkey_file, channels, comment):
    """Trust a minisign public key for the named channels."""
    from edgenode.bundles import minisign, trust

    key = trust.add_key(ctx.conn, minisign.load_public_key(pubkey_file), channels, comment=comment)
    click.echo(f"trusted {key['key_id']} for {', '.join(key['channels'])}")


@trust_group.command("list")
@json_option
@pass_ctx
@domain_errors
def trust_list(ctx, as_json):
    """List trusted keys, their channels and each channel's last sequence."""
    from edgenode.bundles import trust

    keys, states = trust.list_keys(ctx.conn), trust.all_channel_states(ctx.conn)
    if as_json:
        echo_json({"keys": keys, "channels": states})
        return
    for k in keys:
        click.echo(f"{k['key_id']}  {', '.join(k['channels'])}  {k['comment']}  ({k['added_by']})")
    for s in states:
        click.echo(f"channel {s['channel']}: last sequence {s['seq']}")
    if not keys:
        click.echo("no trusted keys: bundles cannot be imported until `edgenode trust add`")


@trust_group.command("remove")
@click.argument("key_id")
@click.option("--channel", "channels", multiple=True, help="Only remove the right to this channel (repeatable).")
@pass_ctx
@domain_errors
def trust_remove(ctx, key_id, channels):
    """Stop trusting a key (or only for some channels)."""
    from edgenode.bundles import trust

    if not trust.remove_key(ctx.conn, key_id, channels or None):
        raise click.ClickException(f"E_TRUST_UNKNOWN: no trusted key {key_id}")
    click.echo(f"removed {key_id.upper()}" + (f" from {', '.join(channels)}" if channels else ""))


@trust_group.command("rotate")
@click.argument("keylist", type=click.Path(exists=True, dir_okay=False))
@pass_ctx
@domain_errors
def trust_rotate(ctx, keylist):
    """Apply a key list (KEYLIST + KEYLIST.minisig) signed by a currently trusted key."""
    from edgenode.bundles import trust

    path = Path(keylist)
    sig = path.with_name(path.name + ".minisig")
    if not sig.is_file():
        raise click.ClickException(f"E_SIG_MISSING: {sig} is missing")
    r = trust.apply_keylist(ctx.conn, path.read_bytes(), sig.read_text(encoding="utf-8", errors="replace"))
    click.echo(f"key list #{r['seq']} from {r['signer']}: added {', '.join(r['added']) or 'none'}, "
               f"revoked {', '.join(r['revoked']) or 'none'}" + ("" if r["applied"] else " (already applied)"))


# -- import ----------------------------------------------------------------------
@click.command("import")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--source", default="cli", show_default=True, help="Recorded in the import history.")
@json_option
@pass_ctx
@domain_errors
def import_cmd(ctx, path, source, as_json):
    """Import every bundle under PATH (a bundle, a stick, a spool or a staging folder)."""
    from edgenode.bundles.pipeline import import_tree

    bar = None if as_json else _Bar()
    try:
        results = import_tree(ctx.cfg, ctx.conn, ctx.store, Path(path), source=source, progress=bar)
    finally:
        if bar:
            bar.close()
    _print_results(results, as_json)


@click.command("imports")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
@pass_ctx
@domain_errors
def imports_cmd(ctx, limit, as_json):
    """Show the import history, newest first."""
    from edgenode.bundles.history import recent

    rows = recent(ctx.conn, limit)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['result']:9} {r['source']:12} {Path(r['bundle']).name}  {r['summary_zh']}"
                   + (f"  [{r['error_code']}]" if r["error_code"] else ""))


@click.group("spool")
def spool_group():
    """The satellite receiver's spool directory."""


@spool_group.command("scan")
@json_option
@pass_ctx
@domain_errors
def spool_scan(ctx, as_json):
    """Import complete bundles from the spool; report waiting and stale ones."""
    from edgenode.sources.satellite import scan_spool

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
    from edgenode.sources.usb import import_device

    bar = None if as_json else _Bar()
    try:
        results = import_device(ctx.cfg, ctx.conn, ctx.store, device, progress=bar)
    finally:
        if bar:
            bar.close()
    _print_results(results, as_json)


@usb_group.command("mount")
@click.argument("device")
@pass_ctx
@domain_errors
def usb_mount(ctx, device):
    """Mount DEVICE (e.g. sdb1) read-only, nosuid, nodev, noexec under usb.mount_dir (refuses system disks)."""
    from edgenode.sources.usb import mount_device

    click.echo(mount_device(ctx.cfg, device))


@usb_group.command("unmount")
@click.argument("device")
@pass_ctx
@domain_errors
def usb_unmount(ctx, device):
    """Unmount what `usb mount DEVICE` mounted (lazily: the stick may already be gone)."""
    from edgenode.sources.usb import unmount_device

    unmount_device(ctx.cfg, device)


@usb_group.command("watch")
@click.option("--once", is_flag=True, help="Look once and exit (for tests and cron).")
@pass_ctx
@domain_errors
def usb_watch(ctx, once):
    """Watch the mount table under usb.media_roots and import each stick once."""
    from edgenode.sources.usb import watch

    def report(mountpoint, results):
        for r in results:
            click.echo(f"{mountpoint}: {Path(r.bundle).name}: {r.summary_zh()}"
                       + (f" [{r.error_code}]" if r.error_code else ""))

    watch(ctx.cfg, ctx.conn, ctx.store, once=once, on_results=report)


COMMANDS = [keys_group, bundle_group, trust_group, import_cmd, imports_cmd, spool_group, usb_group]
