"""The catalogue: resources with Chinese metadata, their blobs, and search."""
