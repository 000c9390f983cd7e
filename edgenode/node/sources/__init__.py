"""Where bundles come from (USB sticks, the satellite spool).  Sources only find bundles;
the one import pipeline in ``edgenode.node.imports.pipeline`` decides and imports."""
