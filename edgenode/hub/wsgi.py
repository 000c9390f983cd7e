"""gunicorn entry point: ``gunicorn 'edgenode.hub.wsgi:app'`` (config from /etc/edgenode/edgenode.toml)."""

from edgenode.hub.app import create_hub_app

app = create_hub_app()
