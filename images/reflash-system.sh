#!/bin/bash
# Re-flash only the EFI and system partitions of an edgenode disk from a new image,
# keeping its data partition (content, identity, config, logs):
#
#   sudo images/reflash-system.sh edgenode.img /dev/sdX
#
# Use it for a broken system or a big jump in Debian; ordinary upgrades use
# provisioning/upgrade.sh.  The disk must have been written from an image with the
# same partition sizes (same --system-size).  At the next boot the first-boot unit
# sees the new system (no SSH host keys), keeps the identity, backs up the database
# and the new release migrates it.
set -euo pipefail
IMG=${1:?usage: reflash-system.sh IMAGE DISK}
DISK=${2:?usage: reflash-system.sh IMAGE DISK}
die() { echo "reflash: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -b "$DISK" ] || [ -f "$DISK" ] || die "$DISK is not a disk"

parts() {  # parts FILE -> "start size" per partition, in sectors
    sfdisk -J "$1" | python3 -c "import json,sys
for p in json.load(sys.stdin)['partitiontable']['partitions']: print(p['start'], p['size'], p.get('name', ''))"
}
mapfile -t want < <(parts "$IMG")
mapfile -t have < <(parts "$DISK")
[ "${#want[@]}" = 3 ] && [ "${#have[@]}" = 3 ] || die "expected 3 partitions on both (EFI, system, data)"
for i in 0 1; do
    [ "${want[$i]}" = "${have[$i]}" ] || die "partition $((i + 1)) differs: image '${want[$i]}', disk '${have[$i]}'"
done
[ "$(echo "${have[2]}" | awk '{print $3}')" = edgenode-data ] || die "$DISK has no edgenode-data partition"
if grep -q "^$DISK" /proc/mounts; then die "$DISK is mounted: boot from a USB stick or use another PC"; fi

for i in 0 1; do
    read -r start size _ <<< "${want[$i]}"
    echo "writing partition $((i + 1)) ($((size / 2048)) MiB)"
    dd if="$IMG" of="$DISK" bs=4M iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc,fsync status=none \
        skip=$((start * 512)) seek=$((start * 512)) count=$((size * 512))
done
sync
echo "done: the data partition of $DISK was not touched"
