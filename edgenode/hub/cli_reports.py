"""``edgenode hub report PERIOD``: the annual-assessment report as a file (``hub/reports.py``).

The same files as the 服务统计 page's downloads; a county's yearly PDF takes a while to lay
out, so writing it here (or from a timer) spares the web worker."""

from __future__ import annotations

from pathlib import Path

import click

from edgenode.hub.cli_kit import _hub, domain_errors, pass_ctx


@click.command("report")
@click.argument("period")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "pdf", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write here (default: report-PERIOD.FORMAT in the current folder).")
@pass_ctx
@domain_errors
def report_cmd(ctx, period, fmt, output):
    """Write the report of PERIOD (YYYY-MM or YYYY) per township, service point, column and resource,
    and the live-broadcast duty per service point."""
    from edgenode.hub import live, reports, reports_write as w
    r = reports.build(_hub(ctx), period, county=ctx.cfg.hub.name, offset_hours=ctx.cfg.hub.utc_offset_hours,
                      live_titles=live.titles(ctx.cfg))
    body = {"xlsx": w.to_xlsx, "pdf": w.to_pdf, "csv": lambda x: w.to_csv(x).encode()}[fmt](r)
    path = Path(output or f"report-{period}.{fmt}")
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(body)
    tmp.replace(path)  # a half-written report never carries the real name
    click.echo(f"{path}: {r['title']}, {sum(len(s['rows']) for s in r['sections'])} rows")


COMMANDS = [report_cmd]  # added to `edgenode hub` by hub/cli.py
