"""The county hub: enrolment, signed ingest, fleet, statistics, publishing, tiers.

A second app (``edgenode.hub.app.create_hub_app``) and its own database file
(``DATA_DIR/hub.db``), sharing the node's config, db helpers and identity.
Only ``app.py`` and ``web/`` import Flask; every other module here is plain
functions taking a connection first, called by the CLI, the web and the tests.
"""
