#!/bin/sh
# Install the Debian packages given as arguments, if any are missing.
# As root: apt-get installs them.  Otherwise: one clear message listing them.
missing=""
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        echo "apt-get install failed for:$missing" >&2; exit 1; }
else
    echo "edgenode needs these Debian packages; run as root:" >&2
    echo "  sudo apt-get install$missing" >&2
    exit 1
fi
