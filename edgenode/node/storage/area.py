"""Storage that never fills up: subscriptions, quota, eviction, transcoding."""

from edgenode.core.registry import Area

AREA = Area(
    name="storage",
    schemas=("edgenode.node.storage.schema",),
    web=("edgenode.node.storage.admin_views:init_app",),
    cli=("edgenode.node.storage.cli:COMMANDS",),
    scheduler=("edgenode.node.storage.jobs:schedule",),
    hooks={
        "imports.plan": ("edgenode.node.storage.subscriptions:split_manifest",),
        "imports.make_room": ("edgenode.node.storage.quota:make_room",),
        "imports.commit": ("edgenode.node.storage.subscriptions:commit_hook",),
        "catalog.listed_on_request": ("edgenode.node.storage.schema:LISTED_ON_REQUEST",),
    },
)
