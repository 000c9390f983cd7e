#!/bin/bash
# Upgrade an installed node to this checkout (or --wheel), keeping data and config:
#
#   sudo provisioning/upgrade.sh [--wheel FILE] [--wheelhouse DIR]
#
# 1. builds the new release beside the running one (the portal keeps serving);
# 2. stops the services and backs up the database (SQLite online backup, checked);
# 3. switches /opt/edgenode to the new release and runs the migrations;
# 4. re-runs the new release's installer (units, nginx site, packages) and starts.
# If the migrations fail, the old release and the backed-up database come back.
set -euo pipefail
umask 022
HERE=$(dirname "$(readlink -f "$0")")  # through /usr/local/sbin/edgenode-setup and /opt/edgenode
# shellcheck source=provisioning/lib.sh
. "$HERE/lib.sh"

WHEEL="" WHEELHOUSE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) WHEEL=$(realpath "${2:?--wheel needs a file}"); shift 2 ;;
        --wheelhouse) WHEELHOUSE=$(realpath "${2:?--wheelhouse needs a directory}"); shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root"
[ -f "$CONFIG" ] && [ -L "$PREFIX" ] || die "edgenode is not installed here: use provisioning/install.sh"
REPO=$(dirname "$HERE")
[ -f "$REPO/setup.cfg" ] || [ -n "$WHEEL" ] || die "run upgrade.sh from a checkout, or give --wheel"

OLD=$(readlink "$PREFIX")
say "building the new release (the running one keeps serving)"
NEW=$(install_release "$REPO" "$WHEEL" "$WHEELHOUSE")
if [ "$NEW" = "$OLD" ]; then say "already running this release"; fi

services_stop() { systemd_running && systemctl stop $NODE_UNITS 2>/dev/null || true; }
services_start() { systemd_running && systemctl start $NODE_UNITS || true; }

services_stop
BACKUP=""
if [ -f "$DATA/edgenode.db" ]; then
    BACKUP=$(runuser -u "$USER_NAME" -- env EDGENODE_CONFIG="$CONFIG" "$NEW/bin/edgenode" backup db \
             --dest "$DATA/backups" --keep 5) || { services_start; die "database backup failed: nothing changed"; }
    say "database backed up to $BACKUP"
fi

rollback() {
    say "migrations failed: going back to $OLD and the backed-up database"
    switch_release "$OLD"
    if [ -n "$BACKUP" ]; then
        rm -f "$DATA/edgenode.db-wal" "$DATA/edgenode.db-shm"
        install -m 0600 -o "$USER_NAME" -g "$USER_NAME" "$BACKUP" "$DATA/edgenode.db.restore"
        mv -f "$DATA/edgenode.db.restore" "$DATA/edgenode.db"
    fi
    services_start
    die "upgrade failed; the node runs the previous release with its data as before"
}

[ "$NEW" != "$OLD" ] && state_set previous-release "$OLD"
switch_release "$NEW"
as_edgenode db check >/dev/null || rollback

# The new release's installer updates units, nginx site and packages, then starts.
"$PREFIX/share/provisioning/install.sh"
state_set upgraded "$(basename "$NEW")"
say "upgraded: $(basename "$OLD") -> $(basename "$NEW")"
