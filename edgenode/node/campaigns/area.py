"""Campaigns (征集/评选): items, votes with a daily limit, the county ranking."""

from edgenode.core.registry import Area

AREA = Area(
    name="campaigns",
    schemas=("edgenode.node.campaigns.schema",),
    hooks={"sync.after_uplink": ("edgenode.node.campaigns.ranking:after_uplink",)},
)
