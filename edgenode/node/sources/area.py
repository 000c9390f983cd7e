"""Where bundles come from: USB sticks, the satellite spool, the scheduled rsync pull.

The pull and the spool scan run as sync's scheduled jobs (``sync/area.py``): sync
owns the link windows and the job runner, sources owns the work.
"""

from edgenode.core.registry import Area

AREA = Area(name="sources", cli=("edgenode.node.sources.cli:COMMANDS",))
