"""朗读's command: make the speech files now (the scheduled job does the same at idle priority)."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("speech")
def speech():
    """朗读: titles and descriptions spoken by espeak-ng."""


@speech.command("run")
@click.option("--workers", type=click.IntRange(1, 8), default=2, show_default=True)
@json_option
@pass_ctx
@domain_errors
def run_cmd(ctx, workers, as_json):
    """Speak the queue and every visible resource that has no speech file yet."""
    from edgenode.node.speech.jobs import run
    result = run(ctx.conn, ctx.cfg, workers=workers)
    if as_json:
        echo_json(result)
        return
    click.echo(f"made {result['made']} speech files ({result['texts']} texts checked)")


COMMANDS = [speech]
