"""The node's areas, bottom to top: an area may import those before it, never those after.

``setup.cfg`` names :data:`AREAS` as the ``edgenode.areas`` entry point, which
is how ``core.registry`` finds them.  The same order is written down in
docs/ARCHITECTURE.md and enforced by import-linter (``.importlinter``); a test
checks the three agree.
"""

from edgenode.core.registry import Area
from edgenode.node.activities.area import AREA as activities
from edgenode.node.admin.area import AREA as admin
from edgenode.node.campaigns.area import AREA as campaigns
from edgenode.node.catalog.area import AREA as catalog
from edgenode.node.contrib.area import AREA as contrib
from edgenode.node.feedback.area import AREA as feedback
from edgenode.node.health.area import AREA as health
from edgenode.node.imports.area import AREA as imports
from edgenode.node.portal.area import AREA as portal
from edgenode.node.sources.area import AREA as sources
from edgenode.node.storage.area import AREA as storage
from edgenode.node.sync.area import AREA as sync
from edgenode.node.usage.area import AREA as usage

# The shell's own declarations: the administrator account behind every admin page, and the
# commands that are about the whole node (config show, serve, db check).
shell = Area(name="web", schemas=("edgenode.node.web.accounts_schema",), cli=("edgenode.node.cli_system:COMMANDS",))

AREAS = (shell, catalog, usage, storage, imports, sources, sync, feedback, campaigns, activities, health, portal, contrib,
         admin)
