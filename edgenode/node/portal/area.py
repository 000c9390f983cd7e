"""The villagers' portal: home, columns, search, the resource page, media."""

from edgenode.core.registry import Area

AREA = Area(name="portal", web=("edgenode.node.portal.views:init_app", "edgenode.node.portal.sections:init_app",
                         "edgenode.node.portal.files:init_app"))
