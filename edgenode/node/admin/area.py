"""The point administrator's dashboard, password, identity and backups."""

from edgenode.core.registry import Area

AREA = Area(
    name="admin",
    web=("edgenode.node.admin.views:init_app",),
    cli=("edgenode.node.admin.cli:COMMANDS", "edgenode.node.admin.cli_identity:COMMANDS"),
)
