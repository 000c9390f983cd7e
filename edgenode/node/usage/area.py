"""Usage: page views and plays recorded on the node, the figures built on them."""

from edgenode.core.registry import Area

AREA = Area(
    name="usage",
    schemas=("edgenode.node.usage.schema",),
    web=("edgenode.node.usage.beacons:init_app",),
)
