"""The one verified import: signature, trust, plan, copy and hash, one transaction."""

from edgenode.core.registry import Area

AREA = Area(
    name="imports",
    schemas=("edgenode.node.imports.schema",),
    web=("edgenode.node.imports.views:init_app",),
    cli=("edgenode.node.imports.cli:COMMANDS",),
)
