#!/bin/bash
# First boot of a disk image (edgenode-firstboot.service, or by hand in a chroot):
# every copy of one image gets its own node id and key, session key and SSH host
# keys.  Runs only while the image's marker /var/lib/edgenode/.firstboot exists;
# the marker goes last, so a first boot cut short simply runs again.
set -euo pipefail
umask 077
HERE=$(dirname "$(readlink -f "$0")")  # through /usr/local/sbin/edgenode-setup and /opt/edgenode
# shellcheck source=provisioning/lib.sh
. "$HERE/lib.sh"

MARKER=$DATA/.firstboot
[ "$(id -u)" = 0 ] || die "run as root"
new_system=0
[ -f /etc/ssh/ssh_host_ed25519_key ] || new_system=1
if [ ! -f "$MARKER" ] && [ "$new_system" = 0 ]; then say "not a first boot: nothing to do"; exit 0; fi

if [ -f "$MARKER" ]; then
    # The identity is made as root (the unit has no setuid capability) and handed to
    # the service user; the config is read directly so no setting can redirect it.
    EDGENODE_CONFIG=$CONFIG "$PREFIX/bin/edgenode" --data-dir "$DATA" identity reset --yes
    chown -R "$USER_NAME:$USER_NAME" "$DATA/identity"
    # Per-copy secrets an image must not share: the session keys are remade at start.
    rm -f "$DATA/secret_key" "$DATA/hub_secret_key" "$DATA/enroll-pending.json"
elif [ -f "$DATA/edgenode.db" ]; then
    # A re-flashed system partition over a kept data partition: same identity; the
    # new release migrates the database when it starts, so keep a copy first.
    say "new system on an existing data partition: keeping node $(cat "$DATA/identity/node_id" 2>/dev/null)"
    EDGENODE_CONFIG=$CONFIG "$PREFIX/bin/edgenode" --data-dir "$DATA" backup db --dest "$DATA/backups"
    chown -R "$USER_NAME:$USER_NAME" "$DATA/backups"
fi

if command -v ssh-keygen >/dev/null; then
    [ "$new_system" = 1 ] || rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
    ssh-keygen -A >/dev/null
fi

sync
rm -f "$MARKER"
say "first boot done: node $(cat "$DATA/identity/node_id" 2>/dev/null || echo '?')"
say "next, as root: edgenode-setup --name NAME --hub URL --code CODE   (docs/operations.md)"
