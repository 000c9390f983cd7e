"""Node health: the one snapshot, warnings, metrics, diagnostics, mDNS discovery."""

from edgenode.core.registry import Area

AREA = Area(
    name="health",
    web=("edgenode.node.health.views:init_app",),
    cli=("edgenode.node.health.cli:COMMANDS",),
    hooks={
        "sync.heartbeat_snapshot": ("edgenode.node.health.snapshot:heartbeat_payload",),
        "sync.diagnostics_bundle": ("edgenode.node.health.diagnostics:build",),
    },
)
