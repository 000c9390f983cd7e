"""Small helpers shared by every ``edgenode hub`` command module (cli.py and the groups it mounts):
here, not in cli.py, so that those groups can import them without a cycle."""

from __future__ import annotations

import functools
import json
import time

import click

from edgenode.core.context import Context
from edgenode.core.errors import EdgenodeError

pass_ctx = click.make_pass_decorator(Context)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def domain_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgenodeError as e:
            raise click.ClickException(e.cli_message()) from None
    return wrapper


def _hub(ctx):
    """The hub database, opened once per command and closed with it."""
    conn = getattr(ctx, "_hub_conn", None)
    if conn is None:
        from edgenode.hub.database import open_hub
        conn = ctx._hub_conn = open_hub(ctx.cfg, check=True)
        click.get_current_context().call_on_close(conn.close)
    return conn


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"
