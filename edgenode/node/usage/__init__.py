"""Usage: events recorded by the portal, sealed into batches, sent upstream."""
