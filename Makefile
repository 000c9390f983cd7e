# The two commands a newcomer needs (see README.md):
#   make run    install everything, build the demo library, serve it as production does
#   make test   install everything, run the whole test suite
# Both are idempotent and do all set-up on a fresh Debian 12 machine.

PYTHON  ?= python3
VENV    ?= .venv
BIN      = $(VENV)/bin
DATA    ?= $(CURDIR)/var/demo
HOST    ?= 0.0.0.0
PORT    ?= 8080
PYTEST_ARGS ?=

# System packages: one list for the node (also provisioning/install.sh) and one for the tests and demo.
SYS_PACKAGES = $(shell grep -hv '^\s*\(\#\|$$\)' provisioning/node-packages.txt provisioning/dev-packages.txt)

.PHONY: run run-county test deps sysdeps venv lock fresh-check clean bench

# The production stack in the foreground: gunicorn behind nginx, the scheduler and the
# mDNS advertiser, on the demo library; prints the URLs and the demo admin password.
run: deps
	$(BIN)/edgenode --data-dir $(DATA) demo
	$(BIN)/edgenode --data-dir $(DATA) stack --host $(HOST) --port $(PORT)

# A demo county on loopback: a hub and two nodes enrolled to it (provisioning/demo-county.sh).
run-county: deps
	sh provisioning/demo-county.sh

test: deps
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

deps: sysdeps venv

sysdeps:
	@sh provisioning/sysdeps.sh $(SYS_PACKAGES)

venv: $(VENV)/.installed

# Installs only what requirements/dev.lock pins, each file checked against its hash; setup.py's
# build step compiles the message catalogue.  Regenerate the lock with `make lock`.
$(VENV)/.installed: setup.cfg setup.py pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

lock:
	sh requirements/lock.sh

# Both README commands in a fresh debootstrapped Debian 12 root (as root; about 30 minutes).
fresh-check:
	bash ../shared/tools/fresh-debian-root.sh

bench: deps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
