"""Live broadcasts: the signed schedule, the relay during the window, the replay after it."""

from edgenode.core.registry import Area

AREA = Area(
    name="live",
    schemas=("edgenode.node.live.schema",),
    web=("edgenode.node.live.views:init_app",),
    cli=("edgenode.node.live.cli:COMMANDS",),
    scheduler=("edgenode.node.live.jobs:schedule",),
    hooks={
        "imports.check": ("edgenode.node.live.schedule:check_hook",),
        "imports.commit": ("edgenode.node.live.schedule:commit_hook",),
        "imports.stick": ("edgenode.node.live.schedule:stick_hook",),
        "bundle.sections_from_source": ("edgenode.node.live.schedule:sections_from_source",),
        "sync.heartbeat_answer": ("edgenode.node.live.schedule:apply_answer",),
    },
)
