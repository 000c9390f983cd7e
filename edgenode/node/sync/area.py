"""The node's side of the hub protocol: enrolment, the outbox, uplink, heartbeat, windows.

Sync also owns the job runner (``runner``): every scheduled kind goes through
its window check, back-off and link probe, including the pull and the spool
scan, whose work lives in ``sources``.
"""

from edgenode.core.registry import Area, Job, Step

RUN = "edgenode.node.sync.runner:run_job"

AREA = Area(
    name="sync",
    schemas=("edgenode.node.sync.schema",),
    web=("edgenode.node.sync.admin_views:init_app",),
    cli=("edgenode.node.sync.cli:COMMANDS", "edgenode.node.sync.cli_provision:COMMANDS"),
    # ``order``: the link jobs at a window's opening, the pull last (it can hold the link for hours).
    jobs=(Job("pull", RUN, "sync.pull_minutes", records=("import",), link="rsync", order=30),
          Job("uplink", RUN, "sync.uplink_minutes", link="hub", order=10),
          Job("heartbeat", RUN, "sync.heartbeat_minutes", link="hub", order=20),
          Job("spool_scan", RUN, "sync.spool_scan_minutes", records=("import",), order=40),
          Job("housekeeping", RUN, "sync.housekeeping_hours", unit_seconds=3600, start_late=True, order=50)),
    housekeeping=(Step("usage", "edgenode.node.sync.runner:housekeeping_usage", order=40),),
    scheduler=("edgenode.node.sync.jobs:schedule",),
)
