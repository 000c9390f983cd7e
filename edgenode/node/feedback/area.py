"""Villagers' ratings, comments and requests, as usage events; no personal data."""

from edgenode.core.registry import Area

AREA = Area(name="feedback")
