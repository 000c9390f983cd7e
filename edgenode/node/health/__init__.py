"""Node health: one snapshot for every consumer, and what is built on it.

* ``snapshot`` builds the one health dict (system, network, content, sync,
  software, clock, warnings); ``probes`` holds the operating-system reads.
* ``warnings`` turns config thresholds into coded warnings with Chinese text.
* ``metrics`` renders the snapshot as Prometheus exposition text.
* ``diagnostics`` writes the redacted support bundle.
* ``discovery`` advertises the node over mDNS and finds other nodes.

Framework-free: the web blueprint (``edgenode/node/health/views.py``), the CLI
(``edgenode/node/health/cli.py``) and the sync heartbeat call these functions.
"""
