"""Activities and bookings, and the villagers' pages for campaigns and feedback."""

from edgenode.core.registry import Area, Step

AREA = Area(
    name="activities",
    schemas=("edgenode.node.activities.schema",),
    web=("edgenode.node.activities.views:init_app", "edgenode.node.activities.admin_views:init_app"),
    cli=("edgenode.node.activities.cli:COMMANDS",),
    housekeeping=(Step("privacy", "edgenode.node.activities.privacy:housekeeping", order=10),),
    hooks={
        "imports.check": ("edgenode.node.activities.published:check_manifest_sections",),
        "imports.commit": ("edgenode.node.activities.published:commit_hook",),
        "bundle.sections_from_source": ("edgenode.node.activities.published:sections_from_source",),
    },
)
