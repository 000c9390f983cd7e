# Shared by install.sh, upgrade.sh and firstboot.sh (bash).  Paths are fixed so
# the units in systemd/ can name them.
# shellcheck shell=bash

ETC=/etc/edgenode
CONFIG=$ETC/edgenode.toml
DATA=/var/lib/edgenode
STATE=$ETC/install-state
RELEASES=/opt/edgenode-releases
PREFIX=/opt/edgenode            # a symlink to the current release under $RELEASES
USER_NAME=edgenode
NODE_UNITS="edgenode-web.service edgenode-scheduler.service edgenode-advertise.service"
HUB_UNITS="edgenode-hub.service edgenode-rsyncd.service"
# Software updates (docs/updates.md): boot recovery, and the updater the scheduler asks for.
UPDATE_UNITS="edgenode-update-recover.service edgenode-update.path edgenode-update.service"

CHANGED=0  # set when a run changed the program, a unit or the config: then restart

say() { printf '%s\n' "edgenode: $*"; }
die() { printf '%s\n' "edgenode: error: $*" >&2; exit 1; }

systemd_running() { [ -d /run/systemd/system ]; }

# State file: one "step fingerprint" line per finished step, replaced atomically,
# so a run killed at any moment leaves either the old line or the new one.
state_get() { [ -f "$STATE" ] && awk -v s="$1" '$1 == s { print $2 }' "$STATE"; }
state_set() {
    mkdir -p "$ETC"
    local tmp="$STATE.tmp"
    { [ -f "$STATE" ] && awk -v s="$1" '$1 != s' "$STATE"; printf '%s %s\n' "$1" "$2"; } > "$tmp"
    sync "$tmp" 2>/dev/null || true
    mv -f "$tmp" "$STATE"
}
state_del() {
    [ -f "$STATE" ] || return 0
    awk -v s="$1" '$1 != s' "$STATE" > "$STATE.tmp" && mv -f "$STATE.tmp" "$STATE"
}

# Run the installed edgenode as the service user, against the system config.
as_edgenode() {
    runuser -u "$USER_NAME" -- env EDGENODE_CONFIG="$CONFIG" HOME="$DATA" "$PREFIX/bin/edgenode" "$@"
}

# Write a file only when its content differs (keeps re-runs from touching anything).
put_file() {  # put_file SRC DEST MODE [OWNER:GROUP]
    local src=$1 dest=$2 mode=$3 owner=${4:-root:root}
    if ! cmp -s "$src" "$dest" 2>/dev/null; then
        install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest.new"
        mv -f "$dest.new" "$dest"
        CHANGED=1
    fi
    chmod "$mode" "$dest"; chown "$owner" "$dest"
}

# The tree of a release: a venv plus share/ (units, provisioning scripts, docs).
release_fingerprint() {  # release_fingerprint REPO [WHEEL]
    local repo=$1 wheel=$2
    (
        cd "$repo" || exit 1
        if [ -n "$wheel" ]; then sha256sum "$wheel"; else
            find edgenode setup.cfg pyproject.toml -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
                -print0 | sort -z | xargs -0 sha256sum
        fi
        for d in systemd provisioning docs/operations.md; do if [ -e "$d" ]; then printf '%s\0' "$d"; fi; done |
            xargs -0 -I{} find {} -type f -print0 | sort -z | xargs -0 sha256sum
    ) | sha256sum | cut -c1-16
}

switch_release() {  # point $PREFIX at a release atomically (rename over the old link)
    local target=$1
    [ "$(readlink "$PREFIX" 2>/dev/null)" = "$target" ] && return 0
    if [ -e "$PREFIX" ] && [ ! -L "$PREFIX" ]; then
        die "$PREFIX exists and is not a release link; move it away first"
    fi
    ln -sfn "$target" "$PREFIX.new"
    mv -Tf "$PREFIX.new" "$PREFIX"
    CHANGED=1
}

prune_releases() {  # keep the current and the previous release, for rollback
    local current previous
    current=$(readlink "$PREFIX" 2>/dev/null)
    previous=$(state_get previous-release)
    for d in "$RELEASES"/*; do
        [ -d "$d" ] || continue
        [ "$d" = "$current" ] || [ "$d" = "$previous" ] || rm -rf "$d"
    done
}

# Build a release from the repo (or a wheel) into $RELEASES/<fingerprint>.
# A half-built directory from a killed run lacks .complete and is rebuilt.
install_release() {  # install_release REPO WHEEL WHEELHOUSE -> prints the release dir
    local repo=$1 wheel=$2 wheelhouse=$3 fp dir pipopts
    fp=$(release_fingerprint "$repo" "$wheel") || die "cannot fingerprint $repo"
    dir=$RELEASES/$fp
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir"
        mkdir -p "$RELEASES"
        python3 -m venv "$dir" >&2 || die "python3 -m venv failed (is python3-venv installed?)"
        pipopts="--disable-pip-version-check --no-input -q"
        [ -n "$wheelhouse" ] && pipopts="$pipopts --no-index --find-links $wheelhouse"
        # Dependencies only as requirements/node.lock pins them, each file checked against its
        # hash; then edgenode itself, built (if from the checkout) with those same locked tools.
        # shellcheck disable=SC2086
        "$dir/bin/pip" install --no-compile $pipopts --require-hashes -r "$repo/requirements/node.lock" >&2 ||
            die "pip install of edgenode's locked dependencies failed (requirements/node.lock)"
        # shellcheck disable=SC2086
        "$dir/bin/pip" install --no-compile $pipopts --no-deps --no-build-isolation "${wheel:-$repo}" >&2 ||
            die "pip install of edgenode failed"
        # Byte-compile once, on every core: the services cannot write to /opt (ProtectSystem=strict).
        "$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >/dev/null || die "byte-compiling the release failed"
        mkdir -p "$dir/share/docs"
        cp -r "$repo/systemd" "$repo/provisioning" "$dir/share/"
        [ -f "$repo/docs/operations.md" ] && cp "$repo/docs/operations.md" "$dir/share/docs/"
        chmod -R go-w "$dir"
        : > "$dir/.complete"
    fi
    printf '%s\n' "$dir"
}
