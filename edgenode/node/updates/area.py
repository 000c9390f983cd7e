"""Software updates: signed releases staged from any source, installed in the window, health-gated."""

from edgenode.core.registry import Area, Job

AREA = Area(
    name="updates",
    cli=("edgenode.node.updates.cli:COMMANDS",),
    jobs=(Job("update", "edgenode.node.updates.jobs:run_update", "updates.check_minutes", order=60),),
    scheduler=("edgenode.node.updates.jobs:schedule",),
    hooks={
        "sync.heartbeat_extra": ("edgenode.node.updates.report:heartbeat_section",),
        "sync.heartbeat_answer": ("edgenode.node.updates.report:heartbeat_answer",),
        "imports.releases": ("edgenode.node.updates.stage:stage_tree",),
    },
)
