"""朗读: titles and descriptions spoken by espeak-ng, made after each import at idle priority."""

from edgenode.core.registry import Area

AREA = Area(
    name="speech",
    schemas=("edgenode.node.speech.schema",),
    web=("edgenode.node.speech.views:init_app",),
    cli=("edgenode.node.speech.cli:COMMANDS",),
    scheduler=("edgenode.node.speech.jobs:schedule",),
    hooks={"imports.commit": ("edgenode.node.speech.jobs:commit_hook",)},
)
