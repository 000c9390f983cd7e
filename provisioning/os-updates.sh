#!/bin/bash
# Debian security updates for points with a link, through the county's caching proxy, in the
# update hours (docs/updates.md, "Operating-system updates").
#
#   sudo provisioning/os-updates.sh hub                          # apt-cacher-ng on the hub (port 3142)
#   sudo provisioning/os-updates.sh node --proxy http://HUB:3142 [--hours 01:00-05:00] [--no-install]
#
# On a node: apt goes through the hub's proxy, unattended-upgrades takes only Debian's security
# suite, never reboots, and apt-daily-upgrade.timer fires inside the update hours.  Points
# without a link get security .debs in a software release instead.  ROOT=/some/dir writes the
# files under that directory (tests).  Safe to run again.
set -euo pipefail
umask 022
ROOT=${ROOT:-}
say() { printf '%s\n' "edgenode: $*"; }
die() { printf '%s\n' "edgenode: error: $*" >&2; exit 1; }

MODE=${1:-}; [ $# -gt 0 ] && shift
PROXY="" HOURS="01:00-05:00" INSTALL=1
while [ $# -gt 0 ]; do
    case "$1" in
        --proxy) PROXY=${2:?--proxy needs a URL}; shift 2 ;;
        --hours) HOURS=${2:?--hours needs HH:MM-HH:MM}; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done

put() {  # put DEST (content on stdin), replaced atomically
    local dest=$ROOT$1
    mkdir -p "$(dirname "$dest")"
    cat > "$dest.new" && mv -f "$dest.new" "$dest"
}

case "$MODE" in
hub)
    [ "$INSTALL" = 1 ] && { dpkg-query -W -f='${Status}' apt-cacher-ng 2>/dev/null | grep -q "ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends apt-cacher-ng; }
    put /etc/apt-cacher-ng/zz-edgenode.conf <<'CONF'
# edgenode: the county's cache of Debian packages for its nodes (provisioning/os-updates.sh)
Port: 3142
ExThreshold: 14
CONF
    say "apt-cacher-ng set up: nodes use --proxy http://<this hub>:3142"
    ;;
node)
    url_re='^https?://[][A-Za-z0-9.:-]+(/[^[:space:];]*)?$'
    [[ "$PROXY" =~ $url_re ]] || die "give --proxy http://HUB:3142"
    [[ "$HOURS" =~ ^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$ ]] || die "--hours: HH:MM-HH:MM"
    start_h=${BASH_REMATCH[1]} start_m=${BASH_REMATCH[2]} end_h=${BASH_REMATCH[3]} end_m=${BASH_REMATCH[4]}
    span=$(( (10#$end_h * 60 + 10#$end_m - 10#$start_h * 60 - 10#$start_m + 1440) % 1440 ))
    [ "$span" -gt 10 ] || die "--hours: the window must be longer than 10 minutes"
    [ "$INSTALL" = 1 ] && { dpkg-query -W -f='${Status}' unattended-upgrades 2>/dev/null | grep -q "ok installed" ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends unattended-upgrades; }
    printf 'Acquire::http::Proxy "%s";\n' "$PROXY" | put /etc/apt/apt.conf.d/01edgenode-proxy
    put /etc/apt/apt.conf.d/20auto-upgrades <<'CONF'
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
CONF
    put /etc/apt/apt.conf.d/52edgenode-unattended <<'CONF'
// edgenode: only Debian's security suite, never a reboot (villagers may be watching)
Unattended-Upgrade::Origins-Pattern { "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"; };
Unattended-Upgrade::Automatic-Reboot "false";
Unattended-Upgrade::Remove-Unused-Dependencies "false";
CONF
    for t in apt-daily apt-daily-upgrade; do
        printf '[Timer]\nOnCalendar=\nOnCalendar=*-*-* %s:%s:00\nRandomizedDelaySec=%dmin\n' \
            "$start_h" "$start_m" $(( span - 10 )) | put "/etc/systemd/system/$t.timer.d/edgenode.conf"
    done
    [ -z "$ROOT" ] && [ -d /run/systemd/system ] && systemctl daemon-reload
    say "security updates through $PROXY within $HOURS"
    ;;
*) die "usage: os-updates.sh hub | node --proxy URL [--hours HH:MM-HH:MM]" ;;
esac
