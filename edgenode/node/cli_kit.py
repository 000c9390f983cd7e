"""What the node's command modules share: the context, the error boundary, ``--json``.

Commands parse arguments, call the area's functions and print.  Domain errors
become ``click.ClickException`` with their stable code at this boundary.
"""

from __future__ import annotations

import functools
import json
import logging

import click

from edgenode.core.context import Context
from edgenode.core.errors import EdgenodeError


def domain_errors(fn):
    """Turn EdgenodeError into a one-line 'error E_CODE: message' and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgenodeError as e:
            logging.getLogger("edgenode").debug("command failed", exc_info=True)
            raise click.ClickException(e.cli_message()) from None

    return wrapper


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def echo_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


pass_ctx = click.make_pass_decorator(Context)
