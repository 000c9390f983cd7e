"""Administrator commands: set the portal password, unlock, show the dashboard."""

from __future__ import annotations

import sys

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("admin")
def admin_group():
    """The point administrator's account and dashboard."""


@admin_group.command("set-password")
@click.option("--user", default="admin", show_default=True, help="Administrator user name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_ctx
@domain_errors
def set_password(ctx, user, password_stdin):
    """Set (or change) the portal administrator's password; it is stored only as a scrypt hash.

    Changing it ends every existing admin session and clears a lock-out.
    """
    from edgenode.node.web import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    account = accounts.set_password(ctx.conn, password, user)
    click.echo(f"password set for {account['username']}")


@admin_group.command("unlock")
@click.option("--user", default="admin", show_default=True, help="Administrator user name.")
@pass_ctx
@domain_errors
def unlock(ctx, user):
    """End a lock-out caused by repeated failed logins."""
    from edgenode.node.web import accounts
    from edgenode.core.errors import EdgenodeError

    if not accounts.unlock(ctx.conn, user):
        raise EdgenodeError("E_NO_ADMIN", f"no administrator account named {user!r}")
    click.echo(f"{user} unlocked")


@admin_group.command("status")
@json_option
@pass_ctx
@domain_errors
def status(ctx, as_json):
    """Show the administrator accounts (never the hashes) and any lock-out."""
    import time

    from edgenode.node.web import accounts

    rows = accounts.list_accounts(ctx.conn)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no administrator password set: run `edgenode admin set-password`")
    for r in rows:
        locked = r["locked_until"] - time.time()
        state = f"locked for {int(locked)} s" if locked > 0 else f"{r['failures']} recent failed logins"
        click.echo(f"{r['username']}: {state}")


@admin_group.command("dashboard")
@json_option
@pass_ctx
@domain_errors
def dashboard(ctx, as_json):
    """Print the dashboard figures: storage, resources per column, plays and watch hours."""
    from edgenode.node.admin.dashboard import dashboard as build

    d = build(ctx.conn, ctx.store)
    if as_json:
        echo_json(d)
        return
    s = d["storage"]
    click.echo(f"storage: content {s['content_bytes']} B, disk {s['disk_used_percent']}% used, "
               f"{s['disk_free_bytes']} B free")
    click.echo("resources: " + ", ".join(f"{c['name']} {c['count']}" for c in d["resources"]["by_column"]))
    for period in ("today", "week", "month"):
        u = d["usage"][period]
        click.echo(f"{period}: {u['plays']} plays, {u['watch_hours']} watch hours, {u['views']} page views")
    for m in d["most_watched"]:
        click.echo(f"  {m['resource_id']} {m['title'] or ''}: {m['plays']} plays, {m['watch_hours']} h")


COMMANDS = [admin_group]
