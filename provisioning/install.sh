#!/bin/bash
# Turn a fresh Debian 12 PC into an edgenode point, in one command:
#
#   sudo provisioning/install.sh --name 某某村 --hub https://hub.example:8443 --code ENROLL-CODE
#
# Idempotent and resumable: every step checks what is already there, and the
# finished steps are recorded in /etc/edgenode/install-state.  Re-running after
# an interruption continues; re-running on a working node changes nothing.
# See docs/operations.md.
set -euo pipefail
umask 022

HERE=$(dirname "$(readlink -f "$0")")  # through /usr/local/sbin/edgenode-setup and /opt/edgenode
# shellcheck source=provisioning/lib.sh
. "$HERE/lib.sh"

usage() {
    cat <<'EOF'
usage: install.sh [--name NAME] [--township T] [--hub URL --code CODE]
                  [--wheel FILE] [--wheelhouse DIR] [--image] [--hub-server]
       install.sh --uninstall [--purge]

  --name NAME       the point's name as villagers see it (node.name), e.g. 某某村文化服务点
  --township T      its township (node.township)
  --hub URL         the county hub, e.g. https://hub.example:8443
  --code CODE       the one-time enrolment code county staff issued for this point
  --wheel FILE      install this edgenode wheel instead of building from this checkout
  --wheelhouse DIR  install Python dependencies only from DIR (no network)
  --image           prepare a disk image: no identity, password or enrolment; the
                    first boot makes them (images/README.md)
  --hub-server      also install the county hub units (edgenode-hub, edgenode-rsyncd)
  --uninstall       remove the program and units; keeps /etc/edgenode and the data
  --purge           with --uninstall: also delete the data, the config and the user
EOF
}

NAME="" TOWNSHIP="" HUB="" CODE="" WHEEL="" WHEELHOUSE="" IMAGE=0 HUB_SERVER=0 UNINSTALL=0 PURGE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --name) NAME=${2:?--name needs a value}; shift 2 ;;
        --township) TOWNSHIP=${2:?--township needs a value}; shift 2 ;;
        --hub) HUB=${2:?--hub needs a URL}; shift 2 ;;
        --code) CODE=${2:?--code needs a value}; shift 2 ;;
        --wheel) WHEEL=$(realpath "${2:?--wheel needs a file}"); shift 2 ;;
        --wheelhouse) WHEELHOUSE=$(realpath "${2:?--wheelhouse needs a directory}"); shift 2 ;;
        --image) IMAGE=1; shift ;;
        --hub-server) HUB_SERVER=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run as root: sudo $0 $*"
case "$HUB" in ""|http://*|https://*) ;; *) die "--hub must be an http:// or https:// URL, not '$HUB'" ;; esac
[ -n "$HUB" ] && [ -z "$CODE" ] && die "--hub needs --code (the enrolment code from the county hub)"
[ -n "$CODE" ] && [ -z "$HUB" ] && die "--code needs --hub"
[ -n "$WHEEL" ] && [ ! -f "$WHEEL" ] && die "--wheel $WHEEL: no such file"
[ "$PURGE" = 1 ] && [ "$UNINSTALL" = 0 ] && die "--purge only goes with --uninstall"

# Run from a checkout (provisioning/ beside edgenode/) or from an installed
# release (/opt/edgenode/share/provisioning): then the release is already there.
REPO=$(dirname "$HERE")
if [ -f "$REPO/setup.cfg" ]; then FROM_RELEASE=0
elif [ -f "$(dirname "$REPO")/.complete" ]; then FROM_RELEASE=1; REPO=$(dirname "$REPO")
else die "cannot find the edgenode source or release around $HERE"
fi
SHARE=$([ "$FROM_RELEASE" = 1 ] && echo "$REPO/share" || echo "$REPO")
if [ "$FROM_RELEASE" = 1 ] && [ -n "$WHEEL$WHEELHOUSE" ]; then
    die "this is the installed edgenode-setup: install another release with provisioning/upgrade.sh"
fi

uninstall() {
    local units="$NODE_UNITS $HUB_UNITS edgenode-firstboot.service $UPDATE_UNITS" f
    for f in /etc/systemd/system/edgenode-*.timer; do [ -f "$f" ] && units="$units $(basename "$f")"; done
    if systemd_running; then
        # shellcheck disable=SC2086
        systemctl disable --now $units 2>/dev/null || true
    else
        # shellcheck disable=SC2086
        systemctl disable $units 2>/dev/null || true
    fi
    for u in $units; do rm -f "/etc/systemd/system/$u"; done
    rm -f /etc/systemd/system/edgenode-*.service /etc/systemd/system/edgenode-*.timer /etc/udev/rules.d/*edgenode*.rules
    rm -f /etc/nginx/sites-enabled/edgenode /etc/nginx/sites-available/edgenode /usr/local/sbin/edgenode-setup
    rm -rf "$PREFIX" "$RELEASES"
    systemd_running && systemctl daemon-reload
    rm -f "$STATE"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$ETC"
        # The data directory may be a mount point (separate data partition): empty it.
        [ -d "$DATA" ] && find "$DATA" -mindepth 1 -delete
        mountpoint -q "$DATA" 2>/dev/null || rm -rf "$DATA"
        getent passwd "$USER_NAME" >/dev/null && userdel "$USER_NAME"
        getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME"
        say "removed edgenode, its data, config and user"
    else
        say "removed edgenode; kept $ETC and $DATA (use --purge to delete them)"
    fi
}
if [ "$UNINSTALL" = 1 ]; then uninstall; exit 0; fi

# 1. System packages (sysdeps.sh does nothing when all are present).
step_packages() {
    # shellcheck disable=SC2046
    sh "$SHARE/provisioning/sysdeps.sh" $(grep -v '^#' "$SHARE/provisioning/node-packages.txt")
}

# 2. The service user and the directories.  www-data (nginx) joins the group to
#    read the content store for X-Accel-Redirect; nothing else is shared.
step_user() {
    getent group "$USER_NAME" >/dev/null || groupadd --system "$USER_NAME"
    getent passwd "$USER_NAME" >/dev/null || useradd --system --gid "$USER_NAME" --home-dir "$DATA" \
        --no-create-home --shell /usr/sbin/nologin --comment "edgenode appliance" "$USER_NAME"
    if getent passwd www-data >/dev/null && ! id -nG www-data | tr ' ' '\n' | grep -qx "$USER_NAME"; then
        usermod -a -G "$USER_NAME" www-data
    fi
    install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$DATA"
    # A database or key left behind by a command run as root would lock the services
    # out ("attempt to write a readonly database"): hand anything like that back.
    find "$DATA" -xdev \! -user "$USER_NAME" -exec chown -h "$USER_NAME:$USER_NAME" {} +
}

# 3. The program: a venv release under /opt/edgenode-releases, /opt/edgenode links to it.
step_release() {
    local dir current
    if [ "$FROM_RELEASE" = 1 ]; then dir=$REPO; else
        dir=$(install_release "$REPO" "$WHEEL" "$WHEELHOUSE")
    fi
    current=$(readlink "$PREFIX" 2>/dev/null || true)
    if [ -n "$current" ] && [ "$current" != "$dir" ]; then state_set previous-release "$current"; fi
    switch_release "$dir"
    prune_releases
    ln -sfn "$PREFIX/share/provisioning/install.sh" /usr/local/sbin/edgenode-setup.new
    mv -Tf /usr/local/sbin/edgenode-setup.new /usr/local/sbin/edgenode-setup
    ln -sfn "$PREFIX/bin/edgenode" /usr/local/bin/edgenode.new
    mv -Tf /usr/local/bin/edgenode.new /usr/local/bin/edgenode
}

# 4. The config: only keys from edgenode/core/config.py; the loader validates it.
step_config() {
    local args=(--set "data_dir=$DATA" --set "web.accel_redirect=true")
    if [ -n "$NAME" ]; then args+=(--set "node.name=$NAME"); fi
    if [ -n "$TOWNSHIP" ]; then args+=(--set "node.township=$TOWNSHIP"); fi
    local out
    out=$("$PREFIX/bin/edgenode" provision write-config --file "$CONFIG" "${args[@]}")
    case "$out" in *updated) CHANGED=1 ;; esac
    chown root:"$USER_NAME" "$CONFIG"; chmod 0640 "$CONFIG"
}

# 5. Database (migrations) and identity, made as the service user.
step_data() {
    as_edgenode db check >/dev/null
    if [ "$IMAGE" = 0 ]; then as_edgenode identity show >/dev/null; fi
}

# 6. The administrator password: made and printed once, when none exists.
ADMIN_PASSWORD=""
step_admin() {
    [ "$IMAGE" = 1 ] && return 0
    if ! as_edgenode admin --help >/dev/null 2>&1; then
        say "warning: this edgenode has no 'admin' command; set the password later"; return 0
    fi
    if [ "$(as_edgenode admin status --json | tr -d ' \n')" = "[]" ]; then
        ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
        printf '%s\n' "$ADMIN_PASSWORD" | as_edgenode admin set-password --password-stdin >/dev/null
    fi
}

# 7. Enrolment with the hub, or a pending enrolment the scheduler retries.
ENROLL_RESULT=""
step_enroll() {
    [ -z "$HUB" ] && return 0
    local done_hub out
    done_hub=$(state_get enrolled || true)
    if [ "$done_hub" = "$HUB" ]; then ENROLL_RESULT="already enrolled with $HUB"; return 0; fi
    if as_edgenode enroll --help >/dev/null 2>&1; then
        if out=$(as_edgenode enroll "$HUB" --code "$CODE" 2>&1); then
            state_set enrolled "$HUB"
            printf '%s\n' "$CODE" | as_edgenode provision pending-enroll --clear >/dev/null
            ENROLL_RESULT="enrolled with $HUB"; return 0
        fi
        case "$out" in *E_ENROLL_CODE*|*E_NODE_REVOKED*|*E_NODE_EXISTS*)
            die "the hub refused the enrolment: ${out##*Error: }. Ask county staff for a new code and re-run." ;;
        esac
        ENROLL_RESULT="hub not reachable now (${out##*Error: }); the scheduler will retry"
    else
        ENROLL_RESULT="this edgenode cannot enrol yet; the scheduler will retry"
    fi
    # Same hub and code already waiting: leave the marker as it is (a re-run changes nothing).
    if HUB="$HUB" CODE="$CODE" python3 -c 'import json, os, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if (d.get("hub"), d.get("code")) == (os.environ["HUB"], os.environ["CODE"]) else 1)' \
        "$DATA/enroll-pending.json" 2>/dev/null; then return 0; fi
    printf '%s\n' "$CODE" | as_edgenode provision pending-enroll --hub "$HUB" --code-stdin >/dev/null
}

# 8. Units, udev rules and the nginx site.
step_units() {
    # The updater's units: started by systemd only (at boot, on the scheduler's request), never restarted here.
    local units="$NODE_UNITS edgenode-firstboot.service $UPDATE_UNITS" u f hub_timers=""
    if [ "$HUB_SERVER" = 1 ]; then
        units="$units $HUB_UNITS"
        # The hub's periodic jobs: a oneshot service per timer (docs/hub.md).
        for f in "$PREFIX"/share/systemd/edgenode-hub-*.timer; do
            [ -f "$f" ] || continue
            u=$(basename "$f"); hub_timers="$hub_timers $u"; units="$units $u ${u%.timer}.service"
        done
    fi
    for u in $units; do
        put_file "$PREFIX/share/systemd/$u" "/etc/systemd/system/$u" 0644
    done
    # Units and rules other areas ship (USB import template, udev rule).
    for f in "$PREFIX"/share/systemd/*@.service; do
        [ -f "$f" ] && put_file "$f" "/etc/systemd/system/$(basename "$f")" 0644
    done
    for f in "$PREFIX"/share/systemd/*.rules; do
        [ -f "$f" ] && put_file "$f" "/etc/udev/rules.d/$(basename "$f")" 0644
    done
    if [ "$HUB_SERVER" = 1 ] && [ ! -f "$ETC/rsyncd.conf" ]; then
        put_file "$PREFIX/share/systemd/rsyncd.conf" "$ETC/rsyncd.conf" 0644
    fi
    systemd_running && systemctl daemon-reload
    local enable="$NODE_UNITS edgenode-update-recover.service edgenode-update.path" want out
    [ "$HUB_SERVER" = 1 ] && enable="$enable $HUB_UNITS"
    [ "$IMAGE" = 1 ] && enable="$enable edgenode-firstboot.service"
    for u in $enable $hub_timers; do
        want=/etc/systemd/system/multi-user.target.wants/$u
        case "$u" in *.timer) want=/etc/systemd/system/timers.target.wants/$u ;; esac
        if [ ! -L "$want" ]; then
            out=$(systemctl enable "$u" 2>&1) || die "systemctl enable $u failed: $out"
        fi
    done
    if [ -f "$PREFIX/share/systemd/nginx-site.conf" ] && [ -d /etc/nginx ]; then
        put_file "$PREFIX/share/systemd/nginx-site.conf" /etc/nginx/sites-available/edgenode 0644
        [ -L /etc/nginx/sites-enabled/edgenode ] || ln -s ../sites-available/edgenode /etc/nginx/sites-enabled/edgenode
        rm -f /etc/nginx/sites-enabled/default
        # proxy_cache_path directories: nginx makes the last component, not its parents.
        grep -o 'proxy_cache_path [^ ;]*' /etc/nginx/sites-available/edgenode | while read -r _ dir; do
            install -d -m 0755 "$(dirname "$dir")"
        done
        out=$(nginx -t 2>&1) || die "nginx refuses the edgenode site: $out"
        [ -L /etc/systemd/system/multi-user.target.wants/nginx.service ] || systemctl enable nginx.service 2>/dev/null || true
    else
        say "warning: no nginx site in this release (systemd/nginx-site.conf); portal not published on port 80"
    fi
}

# 9. Start or restart the services when systemd runs (not in a chroot or image build).
step_start() {
    if ! systemd_running; then say "systemd is not running here: the services start at the next boot"; return 0; fi
    local units="$NODE_UNITS"
    [ "$HUB_SERVER" = 1 ] && units="$units $HUB_UNITS"
    if [ "$CHANGED" = 1 ]; then
        nginx -t -q && systemctl reload-or-restart nginx.service
        # shellcheck disable=SC2086
        systemctl restart $units
    else  # nothing changed: make sure they run, without interrupting anyone
        # shellcheck disable=SC2086
        systemctl start nginx.service $units
    fi
    return 0
}

run_step() {  # run_step NAME: run it, then record it with the fingerprint of this run's inputs
    local name=$1 t0=$SECONDS
    say "step $name"
    "step_$name"
    state_set "$name" "$INPUTS"
    [ $((SECONDS - t0)) -lt 5 ] || say "step $name took $((SECONDS - t0)) s"
}

INPUTS=$(printf '%s|%s|%s|%s|%s' "$NAME" "$TOWNSHIP" "$HUB" "$IMAGE" "$HUB_SERVER" | sha256sum | cut -c1-16)
if [ ! -f "$CONFIG" ] && [ -z "$NAME" ] && [ "$IMAGE" = 0 ]; then
    die "a first install needs --name (the point's name, e.g. --name 某某村文化服务点)"
fi
for step in packages user release config data admin enroll units start; do
    run_step "$step"
done
state_set complete "$INPUTS"

# An image leaves per-machine secrets to the first boot (edgenode-firstboot.service):
# node identity, SSH host keys, machine id.
if [ "$IMAGE" = 1 ]; then
    rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
    [ -f /etc/machine-id ] && : > /etc/machine-id
    install -m 0644 -o "$USER_NAME" -g "$USER_NAME" /dev/null "$DATA/.firstboot"
fi

if [ "$IMAGE" = 1 ]; then say "image prepared: the first boot makes the identity (images/README.md)"
else say "done: $(as_edgenode identity show | head -1)"; fi
[ -n "$ENROLL_RESULT" ] && say "$ENROLL_RESULT"
if [ -n "$ADMIN_PASSWORD" ]; then
    cat <<EOF

  Portal administrator: admin
  Password:             $ADMIN_PASSWORD

  It is shown only this once.  Write it down for the point's administrator;
  change it with: sudo edgenode admin set-password

EOF
fi
