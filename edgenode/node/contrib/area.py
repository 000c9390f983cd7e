"""Villagers' own recordings (采集/征集): upload at the point, processing, moderation, up to the county."""

from edgenode.core.registry import Area, Job

AREA = Area(
    name="contrib",
    schemas=("edgenode.node.contrib.schema",),
    web=("edgenode.node.contrib.views:init_app", "edgenode.node.contrib.admin_views:init_app"),
    templates=True,
    cli=("edgenode.node.contrib.cli:COMMANDS",),
    jobs=(Job("contrib_process", "edgenode.node.contrib.process:run_job", "contrib.process_minutes", order=60),),
    hooks={
        "sync.after_uplink": ("edgenode.node.contrib.upstream:after_uplink",),
        "sync.export_logs": ("edgenode.node.contrib.upstream:export_hook",),
    },
)
