"""Node side of the node ↔ hub protocol: enrolment, uplink, heartbeat, content pull, windows."""
