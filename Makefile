# The two commands a newcomer needs (see README.md):
#   make run    install everything, build the demo library, serve it
#   make test   install everything, run the whole test suite
# Both are idempotent and do all set-up on a fresh Debian 12 machine.

PYTHON  ?= python3
VENV    ?= .venv
BIN      = $(VENV)/bin
DATA    ?= $(CURDIR)/var/demo
HOST    ?= 0.0.0.0
PORT    ?= 8080
PYTEST_ARGS ?=

# System packages the node and its tests use.
SYS_PACKAGES = rsync ffmpeg nginx-light minisign sqlite3 chromium fonts-noto-cjk prometheus \
               avahi-daemon avahi-utils iproute2 dbus debootstrap systemd wrk python3-venv \
               fdisk dosfstools mtools qemu-system-x86 ovmf

.PHONY: run test deps sysdeps venv clean bench

run: deps
	$(BIN)/edgenode --data-dir $(DATA) demo
	$(BIN)/edgenode --data-dir $(DATA) serve --host $(HOST) --port $(PORT)

test: deps
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

deps: sysdeps venv

sysdeps:
	@sh provisioning/sysdeps.sh $(SYS_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

bench: deps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
