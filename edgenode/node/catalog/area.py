"""The catalogue: resources, tags, blobs, search; the bottom of the node's areas."""

from edgenode.core.registry import Area, Step

AREA = Area(
    name="catalog",
    schemas=("edgenode.node.catalog.schema",),
    cli=("edgenode.node.catalog.cli:COMMANDS",),
    housekeeping=(Step("verify", "edgenode.node.catalog.maintenance:housekeeping_verify", order=20),
                  Step("gc", "edgenode.node.catalog.maintenance:housekeeping_gc", order=30)),
)
