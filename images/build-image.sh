#!/bin/bash
# Build an x86-64 disk image of an edgenode point (UEFI, GPT):
#
#   sudo images/build-image.sh --tech-password-file pw.txt [--out edgenode.img] [--size 16G]
#
#   p1  EFI system partition (FAT32, 256 MiB): a standalone GRUB that boots p2 by label
#   p2  edgenode-sys  (ext4, --system-size): Debian 12, edgenode preinstalled
#   p3  edgenode-data (ext4, the rest): /var/lib/edgenode, /etc/edgenode and the journal,
#       bind-mounted from /data, so content, identity, config and logs survive a
#       re-flash of the system partition (images/reflash-system.sh).
#
# debootstrap builds p2, then provisioning/install.sh --image runs in a chroot
# exactly as on a PC; the first boot makes each copy's identity (images/README.md).
set -euo pipefail

OUT=edgenode.img SIZE=16G SYSTEM_SIZE=4G SUITE=bookworm
MIRROR=http://deb.debian.org/debian
TECH_PASSWORD_FILE="" WHEEL="" WHEELHOUSE=""
DEBS_CACHE=/var/cache/edgenode-image/debs
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --system-size) SYSTEM_SIZE=$2; shift 2 ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --tech-password-file) TECH_PASSWORD_FILE=$(realpath "$2"); shift 2 ;;
        --wheel) WHEEL=$(realpath "$2"); shift 2 ;;
        --wheelhouse) WHEELHOUSE=$(realpath "$2"); shift 2 ;;
        --debs-cache) DEBS_CACHE=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
    esac
done
die() { echo "build-image: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$TECH_PASSWORD_FILE" ] && [ -s "$TECH_PASSWORD_FILE" ] || \
    die "--tech-password-file FILE is required: the county technicians' first login password"
for tool in debootstrap sfdisk mkfs.vfat mkfs.ext4 losetup mcopy; do
    command -v $tool >/dev/null || die "$tool is missing: apt-get install debootstrap fdisk dosfstools e2fsprogs mtools"
done

REPO=$(dirname "$(dirname "$(readlink -f "$0")")")
PACKAGES="systemd-sysv udev kmod dbus openssh-server linux-image-amd64 grub-efi-amd64-bin systemd-resolved \
dosfstools e2fsprogs iproute2 sudo less nano $(grep -v '^#' "$REPO/provisioning/node-packages.txt" | tr '\n' ' ')"
WORK=$(mktemp -d /var/tmp/edgenode-image.XXXXXX)
R=$WORK/root
LOOPS=()

cleanup() {
    set +e
    umount -R "$R" 2>/dev/null
    for l in "${LOOPS[@]}"; do losetup -d "$l"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== partitions ($SIZE: 256 MiB EFI, $SYSTEM_SIZE system, the rest data)"
rm -f "$OUT.partial"
truncate -s "$SIZE" "$OUT.partial"
sfdisk -q "$OUT.partial" <<EOF
label: gpt
size=256MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=EFI
size=$SYSTEM_SIZE, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=edgenode-system
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=edgenode-data
EOF
# One loop device per partition, by offset: works without udev partition nodes (containers).
attach() {  # attach N -> loop device of partition N
    local start size
    read -r start size < <(sfdisk -J "$OUT.partial" | python3 -c "import json,sys
p = json.load(sys.stdin)['partitiontable']['partitions'][$1 - 1]; print(p['start'], p['size'])")
    losetup --find --show --offset $((start * 512)) --sizelimit $((size * 512)) "$OUT.partial"
}
EFI=$(attach 1); LOOPS+=("$EFI")
SYS=$(attach 2); LOOPS+=("$SYS")
DAT=$(attach 3); LOOPS+=("$DAT")
mkfs.vfat -F 32 -n EDGE-EFI "$EFI" >/dev/null
mkfs.ext4 -q -L edgenode-sys "$SYS"
mkfs.ext4 -q -L edgenode-data -m 1 "$DAT"

mkdir -p "$R"
mount "$SYS" "$R"
mkdir -p "$R/data" "$R/boot/efi"
mount "$DAT" "$R/data"
mkdir -p "$R/data/edgenode" "$R/data/config" "$R/data/journal" "$R/var/lib/edgenode" "$R/etc/edgenode"
mount --bind "$R/data/edgenode" "$R/var/lib/edgenode"
mount --bind "$R/data/config" "$R/etc/edgenode"

echo "== debootstrap $SUITE from $MIRROR"
mkdir -p "$DEBS_CACHE"
debootstrap --variant=minbase --cache-dir="$DEBS_CACHE" --include="$(echo $PACKAGES | tr ' ' ',')" \
    "$SUITE" "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -5 "$WORK/debootstrap.log"; tail -30 "$R/debootstrap/debootstrap.log" 2>/dev/null; die "debootstrap failed"; }

echo "== system settings"
echo edgenode > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tedgenode\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
cat > "$R/etc/fstab" <<'EOF'
# edgenode image: system, EFI, and the data partition that survives a re-flash.
LABEL=edgenode-sys   /          ext4  errors=remount-ro  0 1
LABEL=EDGE-EFI       /boot/efi  vfat  umask=0077,nofail  0 2
LABEL=edgenode-data  /data      ext4  defaults           0 2
/data/edgenode       /var/lib/edgenode  none  bind,x-systemd.requires-mounts-for=/data  0 0
/data/config         /etc/edgenode      none  bind,x-systemd.requires-mounts-for=/data  0 0
/data/journal        /var/log/journal   none  bind,x-systemd.requires-mounts-for=/data  0 0
EOF
mkdir -p "$R/var/log/journal" "$R/etc/systemd/network" "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\nSystemMaxUse=500M\n' > "$R/etc/systemd/journald.conf.d/edgenode.conf"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\nMulticastDNS=no\n' > "$R/etc/systemd/network/20-wired.network"
cat > "$R/etc/issue" <<'EOF'
edgenode cultural service point - \n - address: \4
Log in as "tech". First time: sudo edgenode-setup --name NAME --hub URL --code CODE

EOF
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"; mount --bind /dev "$R/dev"; mount -t sysfs sysfs "$R/sys"
rm -f "$R/etc/resolv.conf"; cp /etc/resolv.conf "$R/etc/resolv.conf"  # resolved links it into /run
chroot "$R" systemctl enable systemd-networkd.service systemd-resolved.service >/dev/null 2>&1
chroot "$R" passwd -l root >/dev/null
chroot "$R" useradd --create-home --shell /bin/bash --groups sudo --comment "county technician" tech
printf 'tech:%s\n' "$(head -1 "$TECH_PASSWORD_FILE")" | chroot "$R" chpasswd
chroot "$R" chage -d 0 tech  # must choose a new password at the first login

echo "== edgenode (provisioning/install.sh --image)"
mkdir -p "$R/srv/edgenode-src" && mount --bind "$REPO" "$R/srv/edgenode-src"
args=(--image)
if [ -n "$WHEEL" ]; then
    mkdir -p "$R/srv/dist" && mount --bind "$(dirname "$WHEEL")" "$R/srv/dist"
    args+=(--wheel "/srv/dist/$(basename "$WHEEL")")
fi
if [ -n "$WHEELHOUSE" ]; then
    mkdir -p "$R/srv/wheelhouse" && mount --bind "$WHEELHOUSE" "$R/srv/wheelhouse"
    args+=(--wheelhouse /srv/wheelhouse)
fi
chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \
    /srv/edgenode-src/provisioning/install.sh "${args[@]}"

echo "== boot loader (UEFI, removable path: no NVRAM entry needed)"
cat > "$WORK/grub.cfg" <<'EOF'
search --no-floppy --label edgenode-sys --set=root
set timeout=2
menuentry "edgenode" {
    linux /vmlinuz root=LABEL=edgenode-sys ro quiet console=tty0 console=ttyS0,115200
    initrd /initrd.img
}
EOF
cp "$WORK/grub.cfg" "$R/tmp/grub.cfg"
chroot "$R" grub-mkstandalone -O x86_64-efi -o /tmp/BOOTX64.EFI \
    --modules="part_gpt ext2 fat search search_label linux normal" "boot/grub/grub.cfg=/tmp/grub.cfg"
# mtools writes the FAT partition without mounting it (no vfat needed on the build host).
export MTOOLS_SKIP_CHECK=1  # a loop device has no floppy geometry
mmd -i "$EFI" ::/EFI ::/EFI/BOOT
mcopy -i "$EFI" "$R/tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
rm -f "$R/tmp/BOOTX64.EFI"

echo "== clean up"
rm -f "$R/usr/sbin/policy-rc.d" "$R/tmp/grub.cfg"
chroot "$R" apt-get clean
ln -sf /run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
sync
umount -R "$R"
for l in "${LOOPS[@]}"; do losetup -d "$l"; done
LOOPS=()
mv "$OUT.partial" "$OUT"
echo "== $OUT ready ($(du -h --apparent-size "$OUT" | cut -f1), sparse $(du -h "$OUT" | cut -f1))"
echo "   sha256 $(sha256sum "$OUT" | cut -c1-64)"
echo "   write it: images/README.md"
