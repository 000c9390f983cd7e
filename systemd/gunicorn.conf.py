"""gunicorn settings for the village portal (edgenode-web.service).

gunicorn runs the Flask app behind nginx.  nginx sends every media byte itself
(``X-Accel-Redirect`` to its internal ``/_store/`` location), so workers only
render pages and answer beacons: short requests, which suits threads.

Environment overrides (used by the tests and the benchmark, never needed in
production): EDGENODE_GUNICORN_BIND, EDGENODE_GUNICORN_WORKERS,
EDGENODE_GUNICORN_THREADS, EDGENODE_GUNICORN_LOGLEVEL.
"""

import os

# nginx talks to us over a UNIX socket in the unit's RuntimeDirectory; the
# directory is 0750 edgenode:edgenode and www-data is in the edgenode group.
bind = os.environ.get("EDGENODE_GUNICORN_BIND", "unix:/run/edgenode-web/gunicorn.sock")

# gthread: a few processes for the two cores, threads so a slow phone on Wi-Fi
# never blocks a whole worker (nginx buffers, but beacons and pages still wait
# on SQLite's write lock now and then).
worker_class = "gthread"
workers = int(os.environ.get("EDGENODE_GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("EDGENODE_GUNICORN_THREADS", "8"))

# Load the app once in the master and fork: the workers share its pages
# (lower RSS), and a broken config or database stops start-up right away
# instead of in a crash-looping worker.
preload_app = True

# Requests are short: a worker stuck for 30 s is broken and gets replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5  # nginx keeps upstream connections open (see nginx-site.conf)

# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = 20000
max_requests_jitter = 2000

# Limits on what a client on the LAN can send (nginx applies its own first).
limit_request_line = 4094
limit_request_fields = 60

# Logs go to the journal; nginx keeps the access log, so ours stays off.
errorlog = "-"
accesslog = None
loglevel = os.environ.get("EDGENODE_GUNICORN_LOGLEVEL", "info").lower()
proc_name = "edgenode-web"
