"""The TV (电视) mode: 10-foot pages, screening schedules from the point or the county."""

from edgenode.core.registry import Area

AREA = Area(
    name="tv",
    schemas=("edgenode.node.tv.schema",),
    web=("edgenode.node.tv.views:init_app",),
    cli=("edgenode.node.tv.cli:COMMANDS",),
    hooks={
        "imports.check": ("edgenode.node.tv.published:check_manifest_sections",),
        "imports.commit": ("edgenode.node.tv.published:commit_hook",),
        "bundle.sections_from_source": ("edgenode.node.tv.published:sections_from_source",),
    },
)
