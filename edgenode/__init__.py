"""edgenode: an offline-first content appliance for cultural service points."""

__version__ = "0.1.0"
