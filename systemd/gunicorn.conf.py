"""gunicorn settings for the village portal (edgenode-web.service).

gunicorn runs the Flask app behind nginx.  nginx sends every media byte itself
(``X-Accel-Redirect`` to its internal ``/_store/`` location), so workers only
render pages and answer beacons: short requests, which suits threads.

Environment overrides (used by the tests and the benchmark, never needed in
production): EDGENODE_GUNICORN_BIND, EDGENODE_GUNICORN_WORKERS,
EDGENODE_GUNICORN_THREADS, EDGENODE_GUNICORN_LOGLEVEL, EDGENODE_GUNICORN_MAX_REQUESTS
(the soak benchmark sets 0, so a leak cannot hide behind recycling).
"""

import os

# nginx talks to us over a UNIX socket in the unit's RuntimeDirectory; the
# directory is 0750 edgenode:edgenode and www-data is in the edgenode group.
bind = os.environ.get("EDGENODE_GUNICORN_BIND", "unix:/run/edgenode-web/gunicorn.sock")

# One gthread worker with 8 threads.  Python runs one thread at a time, so a
# second worker only helps CPU-bound bursts: on the reference 2-core PC, behind
# nginx, one worker serves the home page at ~1,300 req/s (p99 ~35 ms) and search
# at ~450 req/s, far beyond a reading room's ten terminals and phones, and a
# second worker would cost ~35 MB that the web and the scheduler do not have
# (target: <= 100 MB together; docs/serving.md "Memory").  More threads did not
# serve more (16: ~1,200 req/s, more GIL contention).  Threads, not one, so a
# beacon waiting on SQLite's write lock never holds up the pages; nginx buffers
# requests and answers, so a slow phone never holds a thread, except a villager's
# upload (tus PATCH), which streams: nginx lets at most 4 in at once, so 4 threads
# always serve the pages (nginx-site.conf, limit_conn).  A bigger machine
# can raise the count with a systemd drop-in (Environment=EDGENODE_GUNICORN_WORKERS=2).
worker_class = "gthread"
workers = int(os.environ.get("EDGENODE_GUNICORN_WORKERS", "1"))
threads = int(os.environ.get("EDGENODE_GUNICORN_THREADS", "8"))

# No preload: on Python 3.11 a forked worker soon touches (and so copies) every
# object it inherits, through reference counts, so the master's copy of the app
# was ~25 MB shared with nobody after the first minutes of use.  The master stays
# a bare supervisor (~19 MB PSS).  A worker that cannot load the app (a broken
# config or database) exits with gunicorn's boot-error status, which stops the
# master too: start-up still fails at once rather than crash-looping.
preload_app = False

# At most two malloc arenas.  glibc gives each thread that allocates its own
# arena (up to 8 per core), and freed memory stays scattered over all of them:
# under the 50-client soak the worker's RSS crept ~0.5 MB/min with the default
# and stayed flat with two (docs/serving.md "Soak").  Set here rather than with
# MALLOC_ARENA_MAX in the unit so every way of starting gunicorn gets it; the
# worker inherits it at fork.  Not glibc: nothing to do.
def _limit_malloc_arenas(n=2):
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, n)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


_limit_malloc_arenas()

# Requests are short: a worker stuck for 30 s is broken and gets replaced.
timeout = 30
graceful_timeout = 20
keepalive = 5  # nginx keeps upstream connections open (see nginx-site.conf)

# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("EDGENODE_GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000

# Limits on what a client on the LAN can send (nginx applies its own first).
limit_request_line = 4094
limit_request_fields = 60

# gunicorn 27+ opens a control socket in $HOME or $XDG_RUNTIME_DIR by default: an
# admin interface nobody here uses, so none is opened (older versions ignore this).
control_socket_disable = True

# Logs go to the journal; nginx keeps the access log, so ours stays off.
errorlog = "-"
accesslog = None
loglevel = os.environ.get("EDGENODE_GUNICORN_LOGLEVEL", "info").lower()
proc_name = "edgenode-web"
