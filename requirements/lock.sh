#!/bin/sh
# Regenerate the hashed locks from setup.cfg (docs/operations.md, "Updating dependencies"):
#   requirements/dev.lock   the node, its tests and `make run` (Makefile, CI)
#   requirements/node.lock  the node alone (provisioning/install.sh, upgrade.sh)
# Both carry the build tools (setuptools, wheel, babel), so installs use --no-build-isolation
# and nothing unhashed is ever fetched.  node.lock starts from dev.lock's pins, so the two
# agree on every shared version.  UPGRADE=1 takes the newest versions setup.cfg allows.
set -eu
cd "$(dirname "$0")/.."
tools=${TMPDIR:-/tmp}/edgenode-pip-tools
[ -x "$tools/bin/pip-compile" ] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q 'pip-tools>=7.4,<8'; }
opts="--quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras --no-emit-index-url
      --no-emit-find-links --no-emit-trusted-host --no-header"
[ "${UPGRADE:-0}" = 1 ] && opts="$opts --upgrade"
# shellcheck disable=SC2086
"$tools/bin/pip-compile" $opts --extra test --extra demo -o requirements/dev.lock pyproject.toml
cp requirements/dev.lock requirements/node.lock
# shellcheck disable=SC2086
"$tools/bin/pip-compile" $opts -o requirements/node.lock pyproject.toml
rm -rf edgenode.egg-info
