"""The hub's web layer: node-facing API, staff login, dashboard and statistics pages."""
