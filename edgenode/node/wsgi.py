"""The gunicorn entry point: ``gunicorn -c systemd/gunicorn.conf.py edgenode.node.wsgi:app``.

The config comes from ``$EDGENODE_CONFIG`` (or /etc/edgenode/edgenode.toml) like
every other process; production sets ``web.accel_redirect = true`` there so
nginx, not Python, sends media bytes (docs/serving.md).
"""

from edgenode.node.app import create_app

app = create_app()
