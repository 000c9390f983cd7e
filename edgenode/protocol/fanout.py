"""What node and hub agree on for content fan-out: the shape of a swarm endpoint in heartbeats."""

from __future__ import annotations

import re

_ENDPOINT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.\-]{0,252}):(\d{1,5})$")


def valid_endpoint(value) -> bool:
    """``HOST:PORT`` with a plain host name or IPv4 address and a port in 1..65535."""
    m = _ENDPOINT.match(value) if isinstance(value, str) else None
    return bool(m) and 0 < int(m.group(2)) < 65536
