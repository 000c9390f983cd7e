"""Where bundles come from: USB sticks, the satellite spool, the scheduled rsync pull.

The pull and the spool scan run as sync's scheduled jobs (``sync/area.py``): sync
owns the link windows and the job runner, sources owns the work.  Sources also
keeps the fan-out's tables (byte counters, upstreams, the mirror role's clients).
"""

from edgenode.core.registry import Area, Job

AREA = Area(name="sources", schemas=("edgenode.node.sources.schema",), cli=("edgenode.node.sources.cli:COMMANDS",),
            jobs=(Job("mirror_access", "edgenode.node.sources.mirror:job", "mirror.refresh_minutes", order=60),))
