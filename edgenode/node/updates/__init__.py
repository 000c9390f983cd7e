"""Software updates: signed releases staged, installed in the maintenance window, health-gated (docs/updates.md)."""
