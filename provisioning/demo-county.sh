#!/bin/sh
# A demo county on loopback (make run-county): one hub and two village nodes, enrolled to it.
#
#   hub     http://127.0.0.1:$HUB_PORT/   staff login county / the printed password
#   nodes   http://127.0.0.1:$NODE1_PORT/ and :$NODE2_PORT/ (the demo library each)
#
# The hub publishes a signed demo bundle into its rsync tree and writes a demo USB stick;
# the nodes pin the county key when they enrol, pull the bundle within a minute, and send
# heartbeats and usage every minute, so the fleet dashboard fills as you browse a node.
# Everything lives under $DATA (var/county); run it again to reuse it.  One Ctrl-C stops all.
#
# Usage: provisioning/demo-county.sh [--prepare-only]   (prepare-only: set up, print, exit)
set -eu

E=${EDGENODE:-.venv/bin/edgenode}
case $E in /*) ;; *) E="$(pwd)/$E" ;; esac  # honcho runs the Procfile from $DATA
DATA=${DATA:-var/county}
HUB_PORT=${HUB_PORT:-8090}
RSYNC_PORT=${RSYNC_PORT:-8730}
NODE1_PORT=${NODE1_PORT:-8081}
NODE2_PORT=${NODE2_PORT:-8082}
FFMPEG=${FFMPEG:-ffmpeg}
HUB="$DATA/hub"
HUB_URL="http://127.0.0.1:$HUB_PORT"
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
HUB="$DATA/hub"

hub() { EDGENODE_HUB_RSYNC_PORT=$RSYNC_PORT "$E" --data-dir "$HUB" hub "$@"; }

# Staff password: made once, kept 0600 beside the hub's data.
if [ ! -s "$DATA/county-password" ]; then
    (umask 077; python3 -c 'import secrets; print("county-" + secrets.token_urlsafe(9))' \
        > "$DATA/county-password")
fi
PW=$(cat "$DATA/county-password")
hub set-password county --password "$PW" >/dev/null

# One signed demo bundle, published once: two short films made here by ffmpeg.
if ! ls "$HUB/rsync/channels/sannong" 2>/dev/null | grep -q .; then
    SRC="$DATA/demo-source"
    mkdir -p "$SRC"
    "$FFMPEG" -v error -y -f lavfi -i testsrc2=duration=6:size=640x360:rate=25 -f lavfi -i sine=frequency=330:duration=6 \
        -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$SRC/county-rice.mp4"
    "$FFMPEG" -v error -y -f lavfi -i testsrc=duration=6:size=640x360:rate=25 -f lavfi -i sine=frequency=550:duration=6 \
        -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$SRC/county-pigs.mp4"
    cat > "$SRC/resources.json" <<'JSON'
[{"path": "county-rice.mp4", "id": "county-rice", "title": "县中心：早稻育秧要点", "column": "sannong", "tags": ["农技", "水稻"]},
 {"path": "county-pigs.mp4", "id": "county-pigs", "title": "县中心：生猪冬季防病", "column": "sannong", "tags": ["养殖"]}]
JSON
    hub publish "$SRC" --channel sannong >/dev/null
fi
rm -rf "$DATA/stick"
hub usb-tree "$DATA/stick" >/dev/null
hub rsyncd-conf > "$DATA/rsyncd.conf"

node_env() {
    # What the nodes' schedulers need to feel like a county within a minute.
    echo "EDGENODE_SYNC_CHANNELS='[\"sannong\"]' EDGENODE_SYNC_RSYNC_URL=rsync://127.0.0.1:$RSYNC_PORT/edgenode" \
         "EDGENODE_SYNC_PULL_MINUTES=1 EDGENODE_SYNC_UPLINK_MINUTES=1 EDGENODE_SYNC_HEARTBEAT_MINUTES=1"
}

# Two nodes with the demo library, each enrolled once the hub answers (the code is fresh per run;
# re-enrolling the same node with its own key is accepted by the hub).
for n in 1 2; do
    "$E" --data-dir "$DATA/node$n" demo >/dev/null
    hub enroll-code --township "示范镇" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])' \
        > "$DATA/node$n.code"
done

cat > "$DATA/Procfile" <<EOF
hub: EDGENODE_HUB_RSYNC_PORT=$RSYNC_PORT exec $E --data-dir $HUB hub serve --host 127.0.0.1 --port $HUB_PORT --workers 2
rsync: exec rsync --daemon --no-detach --config=$DATA/rsyncd.conf --port=$RSYNC_PORT --log-file=$DATA/rsyncd.log
node1: for i in \$(seq 60); do $E --data-dir $DATA/node1 enroll $HUB_URL --code \$(cat $DATA/node1.code) >/dev/null 2>&1 && break; sleep 1; done; exec env $(node_env) $E --data-dir $DATA/node1 stack --host 127.0.0.1 --port $NODE1_PORT --no-advertise
node2: for i in \$(seq 60); do $E --data-dir $DATA/node2 enroll $HUB_URL --code \$(cat $DATA/node2.code) >/dev/null 2>&1 && break; sleep 1; done; exec env $(node_env) $E --data-dir $DATA/node2 stack --host 127.0.0.1 --port $NODE2_PORT --no-advertise
EOF

cat <<EOF

  county hub:  $HUB_URL/            staff user county, password $PW
  node 1:      http://127.0.0.1:$NODE1_PORT/
  node 2:      http://127.0.0.1:$NODE2_PORT/
  demo stick:  $DATA/stick   ($E --data-dir $DATA/node1 import $DATA/stick)

  Each node prints its own admin password above its URLs. Heartbeats, usage and the county's
  bundle arrive within about a minute. Ctrl-C stops everything.

EOF
[ "${1:-}" = "--prepare-only" ] && exit 0
exec "$(dirname "$E")/honcho" start --no-colour -f "$DATA/Procfile" -d "$DATA"
