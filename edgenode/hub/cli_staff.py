"""``edgenode hub staff ...`` and ``edgenode hub audit``: county staff accounts with a role, and
the audit log of their actions (``hub/staff.py``, ``hub/audit.py``)."""

from __future__ import annotations

import click

from edgenode.hub.cli_kit import _hub, _when, domain_errors, echo_json, json_option, pass_ctx

ROLE = click.Choice(["admin", "viewer"])


@click.group("staff")
def staff_group():
    """County staff accounts: admin (县级管理员) changes things, viewer (查看) only reads."""


@staff_group.command("add")
@click.argument("username")
@click.option("--role", type=ROLE, required=True, help="admin: enrolment, revocation, publishing; viewer: read only.")
@click.password_option(help="The password (prompted twice when omitted).")
@pass_ctx
@domain_errors
def staff_add(ctx, username, role, password):
    """Create USERNAME with ROLE (or set its password and role)."""
    from edgenode.hub import staff
    staff.set_password(_hub(ctx), username, password, role=role)
    click.echo(f"{username}: {role}")


@staff_group.command("role")
@click.argument("username")
@click.argument("role", type=ROLE)
@pass_ctx
@domain_errors
def staff_role(ctx, username, role):
    """Change USERNAME's role; it applies from the account's next request."""
    from edgenode.hub import staff
    staff.set_role(_hub(ctx), username, role)
    click.echo(f"{username}: {role}")


@staff_group.command("list")
@json_option
@pass_ctx
def staff_list(ctx, as_json):
    """Every staff account and its role."""
    from edgenode.hub import staff
    rows = staff.accounts(_hub(ctx))
    if as_json:
        return echo_json(rows)
    for r in rows:
        click.echo(f"{r['username']}\t{r['role']}\tsince {_when(r['created_at'])}")


@click.command("audit")
@click.option("--user", help="Only this account's actions.")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@pass_ctx
def audit_cmd(ctx, user, limit, as_json):
    """The audit log: staff actions on the web and the command line, newest first."""
    from edgenode.hub import audit
    rows = audit.recent(_hub(ctx), limit, user)
    if as_json:
        return echo_json(rows)
    for r in rows:
        click.echo(f"{_when(r['at'])}\t{r['username']}\t{r['role']}\t{r['action']}\t{r['target']}\t{r['outcome']}")


COMMANDS = [staff_group, audit_cmd]  # added to `edgenode hub` by hub/cli.py
