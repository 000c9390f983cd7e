"""Web layer: blueprints, templates and static files.  Only this package imports Flask."""
