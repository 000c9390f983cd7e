"""Bundle commands: keys, build/sign/verify, the trust store, import, spool and USB."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx
from edgenode.protocol.metadata import COLUMNS, KINDS


def _fmt(n: int) -> str:
    from edgenode.node.imports.history import human_bytes
    return human_bytes(n)


class ProgressBar:
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


def print_results(results, as_json) -> None:
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
    from edgenode.protocol import minisign

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
    from edgenode.protocol import minisign
    from edgenode.protocol.build import build_bundle

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
    from edgenode.protocol import minisign
    from edgenode.protocol.build import sign_manifest

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
    from edgenode.node.imports.verify import verify_bundle

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
    from edgenode.protocol import minisign
    from edgenode.node.imports import trust

    key = trust.add_key(ctx.conn, minisign.load_public_key(pubkey_file), channels, comment=comment)
    click.echo(f"trusted {key['key_id']} for {', '.join(key['channels'])}")


@trust_group.command("list")
@json_option
@pass_ctx
@domain_errors
def trust_list(ctx, as_json):
    """List trusted keys, their channels and each channel's last sequence."""
    from edgenode.node.imports import trust

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
    from edgenode.node.imports import trust

    if not trust.remove_key(ctx.conn, key_id, channels or None):
        raise click.ClickException(f"E_TRUST_UNKNOWN: no trusted key {key_id}")
    click.echo(f"removed {key_id.upper()}" + (f" from {', '.join(channels)}" if channels else ""))


@trust_group.command("rotate")
@click.argument("keylist", type=click.Path(exists=True, dir_okay=False))
@pass_ctx
@domain_errors
def trust_rotate(ctx, keylist):
    """Apply a key list (KEYLIST + KEYLIST.minisig) signed by a currently trusted key."""
    from edgenode.node.imports import trust

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
    from edgenode.node.imports.pipeline import import_tree

    bar = None if as_json else ProgressBar()
    try:
        results = import_tree(ctx.cfg, ctx.conn, ctx.store, Path(path), source=source, progress=bar)
    finally:
        if bar:
            bar.close()
    print_results(results, as_json)


@click.command("imports")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@json_option
@pass_ctx
@domain_errors
def imports_cmd(ctx, limit, as_json):
    """Show the import history, newest first."""
    from edgenode.node.imports.history import recent

    rows = recent(ctx.conn, limit)
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['result']:9} {r['source']:12} {Path(r['bundle']).name}  {r['summary_zh']}"
                   + (f"  [{r['error_code']}]" if r["error_code"] else ""))


@click.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--title", required=True, help="Chinese title as villagers see it.")
@click.option("--column", required=True, help="One of: " + ", ".join(f"{k} ({v})" for k, v in COLUMNS.items()))
@click.option("--description", default="", help="Longer description.")
@click.option("--tag", "tags", multiple=True, help="A free tag such as 少儿 or 戏曲 (repeatable).")
@click.option("--id", "resource_id", help="Resource id (default: generated).")
@json_option
@pass_ctx
@domain_errors
def add(ctx, file, title, column, description, tags, resource_id, as_json):
    """Add one media file to the catalogue by hand (maintenance path)."""
    from edgenode.node.imports.add import add_file

    res = add_file(ctx.conn, ctx.store, ctx.cfg, Path(file),
                   {"title": title, "column": column, "description": description, "tags": list(tags)},
                   resource_id=resource_id)
    if as_json:
        echo_json(res)
    else:
        flag = "" if res["playable"] else "  [needs transcoding: browsers cannot play this format]"
        click.echo(f"added {res['id']}: {res['title']} ({KINDS[res['kind']]}, {_fmt(res['size'])}){flag}")


@click.command("demo")
@json_option
@pass_ctx
@domain_errors
def demo(ctx, as_json):
    """Generate the built-in demo library (real media made locally by ffmpeg). Idempotent."""
    from edgenode.node.imports.demo import build_demo

    summary = build_demo(ctx.conn, ctx.store, ctx.cfg)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"demo library: {summary['added']} added, {summary['present']} already present")


COMMANDS = [keys_group, bundle_group, trust_group, import_cmd, imports_cmd, add, demo]
