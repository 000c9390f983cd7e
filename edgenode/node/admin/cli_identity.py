"""Node identity commands: show it, or make a fresh one (first boot of a cloned image)."""

from __future__ import annotations

import click

from edgenode.node.cli_kit import domain_errors, echo_json, json_option, pass_ctx


@click.group("identity")
def identity_group():
    """The node id and Ed25519 key the hub knows this node by."""


def _describe(ident) -> dict:
    return {"node_id": ident.node_id, "public_key": ident.public_b64()}


@identity_group.command("show")
@json_option
@pass_ctx
@domain_errors
def show(ctx, as_json):
    """Print the node id and public key (made on first use; the private key is never shown)."""
    from edgenode.core.identity import load_or_create

    data = _describe(load_or_create(ctx.cfg))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"node_id: {data['node_id']}\npublic_key: {data['public_key']}")


@identity_group.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_ctx
@domain_errors
def reset(ctx, yes, as_json):
    """Forget this node's id and key and make new ones.

    For the first boot of a cloned image.  The hub no longer recognises the
    node afterwards: it must enrol again with a new code.
    """
    from edgenode.core.identity import reset as do_reset

    if not yes:
        click.confirm("The hub will no longer recognise this node. Make a new identity?", abort=True)
    data = _describe(do_reset(ctx.cfg))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"new node_id: {data['node_id']}")


COMMANDS = [identity_group]
