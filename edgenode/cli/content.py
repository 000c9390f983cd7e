"""Content commands: add, search, list, the store's verify and gc, the demo library."""

from __future__ import annotations

from pathlib import Path

import click

from edgenode.cli import domain_errors, echo_json, json_option, pass_ctx
from edgenode.catalog.model import COLUMNS, KINDS


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


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
    from edgenode.catalog.add import add_file

    res = add_file(ctx.conn, ctx.store, ctx.cfg, Path(file),
                   {"title": title, "column": column, "description": description, "tags": list(tags)},
                   resource_id=resource_id)
    if as_json:
        echo_json(res)
    else:
        flag = "" if res["playable"] else "  [needs transcoding: browsers cannot play this format]"
        click.echo(f"added {res['id']}: {res['title']} ({KINDS[res['kind']]}, {_fmt_size(res['size'])}){flag}")


@click.command("search")
@click.argument("query")
@click.option("--column", type=click.Choice(list(COLUMNS)), help="Only this column.")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only this kind.")
@click.option("--tag", help="Only resources with this tag.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--page-size", type=click.IntRange(1, 500), default=20, show_default=True)
@json_option
@pass_ctx
@domain_errors
def search(ctx, query, column, kind, tag, page, page_size, as_json):
    """Search the catalogue (Chinese words of any length, pinyin, initials)."""
    from edgenode.catalog.search import search as run

    result = run(ctx.conn, query, column=column, kind=kind, tag=tag, page=page, page_size=page_size)
    if as_json:
        echo_json({"query": query, "total": result.total, "page": result.page,
                   "items": [{k: r[k] for k in ("id", "title", "column_key", "kind", "size", "duration")}
                             for r in result.items]})
        return
    if not result.total:
        click.echo(f"no matches for {query!r}")
        return
    click.echo(f"{result.total} matches (page {result.page}/{result.pages})")
    for r in result.items:
        click.echo(f"  {r['id']}  [{COLUMNS[r['column_key']]}/{KINDS[r['kind']]}]  {r['title']}")


@click.command("list")
@click.option("--column", type=click.Choice(list(COLUMNS)))
@json_option
@pass_ctx
@domain_errors
def list_cmd(ctx, column, as_json):
    """List visible resources, newest first."""
    from edgenode.catalog.queries import browse

    result = browse(ctx.conn, column=column, page_size=10_000)
    if as_json:
        echo_json([{k: r[k] for k in ("id", "title", "column_key", "kind", "size")} for r in result.items])
        return
    for r in result.items:
        click.echo(f"{r['id']}  [{COLUMNS[r['column_key']]}/{KINDS[r['kind']]}]  {r['title']}")
    click.echo(f"{result.total} resources")


@click.group("store")
def store_group():
    """The content store: verify and garbage-collect blobs."""


@store_group.command("verify")
@json_option
@pass_ctx
@domain_errors
def store_verify(ctx, as_json):
    """Re-hash every blob; hide resources whose blobs are bad. Exit 1 when any is bad."""
    from edgenode.catalog.maintenance import verify_store

    result = verify_store(ctx.conn, ctx.store)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"checked {result['checked']} blobs: {len(result['bad'])} bad, {len(result['missing'])} missing")
        for sha in result["bad"]:
            click.echo(f"  BAD      {sha}")
        for sha in result["missing"]:
            click.echo(f"  MISSING  {sha}")
    if result["bad"] or result["missing"]:
        raise SystemExit(1)


@store_group.command("gc")
@click.option("--staging-age", type=float, default=3600, show_default=True,
              help="Only remove staging files older than this many seconds (running imports use staging).")
@json_option
@pass_ctx
@domain_errors
def store_gc(ctx, staging_age, as_json):
    """Delete blobs no resource references, and stale staging files."""
    from edgenode.catalog.maintenance import collect_garbage

    result = collect_garbage(ctx.cfg, ctx.conn, ctx.store, staging_older_than=staging_age)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"removed {len(result['removed'])} blobs ({_fmt_size(result['bytes_freed'])}), "
                   f"{result['staging_removed']} staging files")


@click.command("demo")
@json_option
@pass_ctx
@domain_errors
def demo(ctx, as_json):
    """Generate the built-in demo library (real media made locally by ffmpeg). Idempotent."""
    from edgenode.demo import build_demo

    summary = build_demo(ctx.conn, ctx.store, ctx.cfg)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"demo library: {summary['added']} added, {summary['present']} already present")


COMMANDS = [add, search, list_cmd, store_group, demo]
