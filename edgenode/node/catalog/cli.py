"""Content commands: add, search, list, the store's verify and gc, the demo library."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx
from edgenode.protocol.metadata import COLUMNS, KINDS


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


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
    from edgenode.node.catalog.search import search as run

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
    from edgenode.node.catalog.queries import browse

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
    from edgenode.node.catalog.maintenance import verify_store

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
    from edgenode.node.catalog.maintenance import collect_garbage

    result = collect_garbage(ctx.cfg, ctx.conn, ctx.store, staging_older_than=staging_age)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"removed {len(result['removed'])} blobs ({_fmt_size(result['bytes_freed'])}), "
                   f"{result['staging_removed']} staging files")


COMMANDS = [search, list_cmd, store_group]
