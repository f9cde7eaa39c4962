#!/usr/bin/env bash
# Builds hiveboot's golden image: Debian (12 by default) + the K3s agent's units, as a raw disk image
# that boots by BIOS and by UEFI from the iSCSI LUN iPXE sanboots (the initramfs logs in again from
# iBFT). Every host's disk is a copy-on-write clone of this file, so nothing in it is per-host.
# Layout, first boot, how a host finds hiveboot: docs/golden-image.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
IMAGE_FILES="$HERE/image"

usage() {
  cat <<'EOF'
Usage: scripts/build-image.sh [options] [OUTPUT]

Builds the golden image (raw, sparse) at OUTPUT (default .tmp/images/debian-k3s.raw in the repo).
Runs as root. Installs its own host tools with apt (debootstrap, dosfstools, mtools, fdisk, e2fsprogs).

  --suite NAME           bookworm (Debian 12, default) or trixie (Debian 13)
  --size SIZE            disk size, e.g. 4G (default), 2048M; the file is sparse
  --mirror URL           Debian mirror (default http://deb.debian.org/debian)
  --k3s-binary PATH      install this k3s binary as /usr/local/bin/k3s
  --k3s-version V        download k3s V (e.g. v1.31.4+k3s1) from its GitHub release and check its
                         sha256 against the release's sha256sum-amd64.txt (needs that site reachable)
  --hiveboot-url URL     bake this hiveboot URL into /etc/hiveboot/agent.conf (default: found at
                         boot from iBFT, see docs/golden-image.md)
  --extra-packages LIST  comma-separated Debian packages to add (e.g. openssh-server,less)
  --root-password-file F set root's password from the first line of F (default: root is locked)
  --kernel-args ARGS     extra kernel command line arguments (in grub.cfg)
  --cache-dir DIR        caches (.debs, configured root trees) (default /var/cache/hiveboot-image)
  --force                rebuild everything, ignoring the caches (the .deb cache is still used)
  -h, --help             this text

Without --k3s-binary/--k3s-version the image has no K3s: it boots, runs the hiveboot agent and
applies the host's config; k3s-agent.service starts once /usr/local/bin/k3s exists.
Caching: an identical build (same options, same scripts) is a no-op; a changed disk size only
re-assembles the image (seconds); anything else rebuilds the root tree (a minute or two).
EOF
}

suite=bookworm size=4G mirror=http://deb.debian.org/debian k3s_binary='' k3s_version='' hiveboot_url=''
extra_packages='' root_password_file='' kernel_args='' cache_dir=/var/cache/hiveboot-image force=0 out=''
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite=${2:?--suite needs a value}; shift 2 ;;
    --size) size=${2:?--size needs a value}; shift 2 ;;
    --mirror) mirror=${2:?--mirror needs a value}; shift 2 ;;
    --k3s-binary) k3s_binary=${2:?--k3s-binary needs a path}; shift 2 ;;
    --k3s-version) k3s_version=${2:?--k3s-version needs a value}; shift 2 ;;
    --hiveboot-url) hiveboot_url=${2:?--hiveboot-url needs a value}; shift 2 ;;
    --extra-packages) extra_packages=${2?}; shift 2 ;;
    --root-password-file) root_password_file=${2:?--root-password-file needs a path}; shift 2 ;;
    --kernel-args) kernel_args=${2?}; shift 2 ;;
    --cache-dir) cache_dir=${2:?--cache-dir needs a path}; shift 2 ;;
    --force) force=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "build-image: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$out" ] || { echo "build-image: one OUTPUT only (see --help)" >&2; exit 2; }; out=$1; shift ;;
  esac
done
out=${out:-$REPO/.tmp/images/debian-k3s.raw}

fail() { echo "build-image: $*" >&2; exit 1; }
case "$suite" in bookworm | trixie) ;; *) fail "--suite must be bookworm or trixie, not '$suite'" ;; esac
[[ "$size" =~ ^([0-9]+)([MG])$ ]] || fail "--size must look like 4G or 2048M, not '$size'"
size_mib=${BASH_REMATCH[1]}; [ "${BASH_REMATCH[2]}" = M ] || size_mib=$((size_mib * 1024))
[ "$size_mib" -ge 1536 ] || fail "--size must be at least 1536M (the root tree alone is about 700 MiB)"
[ -z "$k3s_binary" ] || [ -z "$k3s_version" ] || fail "--k3s-binary and --k3s-version exclude each other"
[ -z "$k3s_binary" ] || [ -f "$k3s_binary" ] || fail "--k3s-binary $k3s_binary: no such file"
[ -z "$root_password_file" ] || [ -r "$root_password_file" ] || fail "--root-password-file $root_password_file: cannot read it"
[[ "$extra_packages" =~ ^[a-z0-9.+,-]*$ ]] || fail "--extra-packages: comma-separated Debian package names"
[[ "$hiveboot_url" =~ ^(https?://[^[:space:]\"\'\$\`\\]+)?$ ]] || fail "--hiveboot-url must be an http(s) URL"
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap and chroot need it)"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

# ------------------------------------------------------------------------------------ progress
T0=$(date +%s%N) STAGE_T='' STAGE_NAME='' SUMMARY=()
elapsed() { local d=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%01d' $((d / 1000)) $((d % 1000 / 100)); }
stage() {
  finish_stage
  STAGE_NAME=$1 STAGE_T=$(date +%s%N)
  printf '[%6ss] %s\n' "$(elapsed "$T0")" "$1"
}
finish_stage() {
  [ -n "$STAGE_NAME" ] || return 0
  SUMMARY+=("$(printf '%8ss  %s' "$(elapsed "$STAGE_T")" "$STAGE_NAME")")
  STAGE_NAME=''
}
note() { printf '           %s\n' "$*"; }

# One build at a time per cache (two test runs, or a test run and an operator): the second waits,
# then usually finds its image up to date.
mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
if ! flock -n 9; then
  echo "build-image: another build is using $cache_dir; waiting for it"
  flock 9
fi

# ------------------------------------------------------------------------------------ host tools
. "$REPO/scripts/lib/apt.sh"
stage "host tools"
ensure_debian_packages build-image debootstrap debian-archive-keyring dosfstools mtools fdisk e2fsprogs curl ca-certificates

# ------------------------------------------------------------------------------------ inputs
# Debian packages of the image. open-iscsi + initramfs-tools + busybox: the iBFT login in the
# initramfs (open-iscsi's scripts there need busybox's rm and ip, the latter for the default route);
# both GRUB builds: grub-mkimage runs in the image's root so GRUB matches its own modules.
packages=(systemd systemd-sysv udev dbus systemd-resolved systemd-timesyncd linux-image-amd64
  initramfs-tools busybox zstd open-iscsi grub-pc-bin grub-efi-amd64-bin e2fsprogs kmod iproute2
  procps curl ca-certificates jq)
if [ -n "$extra_packages" ]; then IFS=, read -r -a extra <<<"$extra_packages"; packages+=("${extra[@]}"); fi

k3s_sha=none
if [ -n "$k3s_version" ]; then
  stage "k3s $k3s_version: download"
  k3s_cache="$cache_dir/k3s/$k3s_version"
  if [ ! -s "$k3s_cache/k3s" ]; then
    mkdir -p "$k3s_cache"
    release_url="https://github.com/k3s-io/k3s/releases/download/${k3s_version//+/%2B}"
    curl -fsSL --retry 2 -o "$k3s_cache/sha256sum-amd64.txt" "$release_url/sha256sum-amd64.txt" \
      && curl -fSL --retry 2 -o "$k3s_cache/k3s.part" "$release_url/k3s" \
      || fail "could not download k3s $k3s_version from $release_url (no route to GitHub from here?). Build without K3s (drop --k3s-version) or give a binary with --k3s-binary."
    want=$(awk '$2 == "k3s" { print $1 }' "$k3s_cache/sha256sum-amd64.txt")
    got=$(sha256sum "$k3s_cache/k3s.part" | cut -d' ' -f1)
    [ -n "$want" ] && [ "$want" = "$got" ] || { rm -f "$k3s_cache/k3s.part"; fail "k3s $k3s_version: sha256 $got does not match the release's '$want'"; }
    mv "$k3s_cache/k3s.part" "$k3s_cache/k3s"
  fi
  k3s_binary="$k3s_cache/k3s"
fi
if [ -n "$k3s_binary" ]; then
  k3s_sha=$(sha256sum "$k3s_binary" | cut -d' ' -f1)
fi
root_password_hash=
if [ -n "$root_password_file" ]; then
  # A salt derived from the password keeps the cache key stable from run to run.
  pw=$(head -n1 "$root_password_file")
  ensure_debian_packages build-image openssl
  root_password_hash=$(openssl passwd -6 -salt "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" "$pw" 2>/dev/null) \
    || fail "--root-password-file needs openssl to hash the password"
fi

# Everything that decides the root tree's content goes into its key: the options and the files of
# scripts/image/ (TREE_FORMAT changes when this script's own tree steps change). The image's key
# adds the disk size and this script, which assembles the disk.
TREE_FORMAT=1
rootfs_key=$( {
  echo "tree-$TREE_FORMAT $suite $mirror ${packages[*]} $k3s_sha $hiveboot_url $root_password_hash $kernel_args"
  (cd "$IMAGE_FILES" && find . -type f | LC_ALL=C sort | while read -r f; do echo "$f $(stat -c %a "$f")"; cat "$f"; done)
} | sha256sum | cut -c1-16)
image_key="$rootfs_key-$size_mib-$(sha256sum "$HERE/build-image.sh" | cut -c1-8)"
info_file="$out.build-info"

if [ "$force" -eq 0 ] && [ -f "$out" ] && [ -f "$info_file" ] && grep -qx "key=$image_key" "$info_file"; then
  finish_stage
  echo "build-image: $out is up to date (key $image_key; --force rebuilds)"
  exit 0
fi

# A UUID made from the key: the same inputs give the same root file system identity.
h=$(printf '%s' "$rootfs_key-uuid" | sha256sum)
root_uuid="${h:0:8}-${h:8:4}-4${h:13:3}-a${h:17:3}-${h:20:12}"
esp_serial=${h:32:8}

mkdir -p "$cache_dir/debs-$suite" "$cache_dir/trees"
tree="$cache_dir/trees/$suite-$rootfs_key"
work=
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Removes a tree after unmounting whatever is still mounted under it (a killed debootstrap leaves its
# /proc; a chroot's /dev is the host's own): rm -rf must never walk into a mount.
remove_tree() {
  local path m
  for path in "$@"; do
    [ -e "$path" ] || continue
    path=$(realpath "$path")
    awk -v p="$path/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    if awk -v p="$path/" 'index($2, p) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
      fail "$path still has mounts under it; not removing it"
    fi
    rm -rf --one-file-system "$path"
  done
}
chroot_mounts() {
  local r=$1
  mount -t proc proc "$r/proc" && mounted+=("$r/proc")
  mount -t sysfs sysfs "$r/sys" && mounted+=("$r/sys")
  mount --bind /dev "$r/dev" && mounted+=("$r/dev")
  mount -t tmpfs tmpfs "$r/run" && mounted+=("$r/run")
}
chroot_unmount() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}"; done
  mounted=()
}

# ------------------------------------------------------------------------------------ root tree
# Two cached trees: the base (debootstrap output; keyed by suite, mirror and packages) and the
# configured tree (a copy of the base + scripts/image/; keyed by everything). Changing a unit or
# the agent re-runs only the configure stage.
base_key=$(echo "base-$TREE_FORMAT $suite $mirror ${packages[*]}" | sha256sum | cut -c1-16)
base="$cache_dir/trees/base-$suite-$base_key"
prune() { # prune PATTERN KEEP: the KEEP most recent trees matching PATTERN stay
  ls -1dt $1 2>/dev/null | tail -n +$(($2 + 1)) | while read -r old; do remove_tree "${old%/}"; rm -f "${old%/}.log" "${old%/}.complete"; done
}
if [ "$force" -eq 0 ] && [ -f "$tree.complete" ]; then
  stage "root tree: cached ($tree)"
else
  if [ "$force" -eq 1 ] || [ ! -f "$base.complete" ]; then
    rm -f "$base.complete"; remove_tree "$base" "$base.partial"
    log="$base.log"
    stage "debootstrap $suite from $mirror (log: $log)"
    included=$(IFS=,; echo "${packages[*]}")
    if ! debootstrap --variant=minbase --arch=amd64 --include="$included" \
        --cache-dir="$cache_dir/debs-$suite" "$suite" "$base.partial" "$mirror" >"$log" 2>&1; then
      tail -n 15 "$log" >&2
      fail "debootstrap failed (full log: $log)"
    fi
    mv "$base.partial" "$base"
    touch "$base.complete"
    note "$(du -sh "$base" | cut -f1) base tree, $(find "$cache_dir/debs-$suite" -name '*.deb' | wc -l) .debs cached"
    prune "$cache_dir/trees/base-$suite-*/" 2
  else
    stage "debootstrap: cached base tree ($base)"
  fi

  rm -f "$tree.complete"; remove_tree "$tree" "$tree.partial"
  log="$tree.log"
  stage "configure: hiveboot units, initramfs (iBFT), GRUB (log: $log)"
  cp -a "$base" "$tree.partial"
  mkdir -p "$tree.partial/tmp/hiveboot-image"
  cp -a "$IMAGE_FILES/." "$tree.partial/tmp/hiveboot-image/"
  if [ -n "$k3s_binary" ]; then install -m 0755 "$k3s_binary" "$tree.partial/usr/local/bin/k3s"; fi
  chroot_mounts "$tree.partial"
  if ! chroot "$tree.partial" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      SUITE="$suite" MIRROR="$mirror" ROOT_UUID="$root_uuid" HIVEBOOT_URL="$hiveboot_url" \
      ROOT_PASSWORD_HASH="$root_password_hash" KERNEL_ARGS="$kernel_args" \
      /bin/bash /tmp/hiveboot-image/configure-rootfs.sh >"$log" 2>&1; then
    chroot_unmount
    tail -n 15 "$log" >&2
    fail "configuring the root tree failed (full log: $log)"
  fi
  chroot_unmount
  rm -rf --one-file-system "$tree.partial/tmp/hiveboot-image"
  mv "$tree.partial" "$tree"
  touch "$tree.complete"
  note "$(du -sh "$tree" | cut -f1) configured tree"
  prune "$cache_dir/trees/$suite-*/" 3
fi
kver=$(cat "$tree/boot/hiveboot-grub/kernel-version")
kcmdline=$(cat "$tree/boot/hiveboot-grub/cmdline")

# ------------------------------------------------------------------------------------ disk image
# MBR: the BIOS GRUB core sits in the gap before partition 1; p1 the ESP (FAT32, removable path
# \EFI\BOOT\BOOTX64.EFI), p2 the ext4 root. MBR rather than GPT: nothing to relocate when a host's
# disk is made bigger than the golden one, and every BIOS and UEFI firmware reads it.
stage "assemble $size image"
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.build-image.XXXXXX")
esp_start=2048 esp_sectors=$((64 * 2048))
root_start=$((esp_start + esp_sectors))
root_sectors=$((size_mib * 2048 - root_start))
img="$work/disk.raw"
truncate -s "${size_mib}M" "$img"
sfdisk --quiet "$img" <<EOF
label: dos
label-id: 0x${h:40:8}
start=$esp_start, size=$esp_sectors, type=ef
start=$root_start, size=$root_sectors, type=83, bootable
EOF

truncate -s $((esp_sectors * 512)) "$work/esp.fat"
mkfs.fat -F 32 -i "$esp_serial" -n HIVEBOOTEFI "$work/esp.fat" >/dev/null
mmd -i "$work/esp.fat" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.fat" "$tree/boot/hiveboot-grub/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
dd if="$work/esp.fat" of="$img" bs=1M seek=$((esp_start * 512)) oflag=seek_bytes conv=notrunc,sparse status=none

# The root file system is written straight from the tree into the partition: no loop device, no mount.
mkfs.ext4 -q -F -L hiveboot-root -U "$root_uuid" -m 1 -E offset=$((root_start * 512)) \
  -d "$tree" "$img" $((root_sectors / 2))k

# BIOS: GRUB's boot.img in the MBR's code area (440 bytes: the disk signature and partition table
# stay), core.img from sector 1 on; its embedded config finds the root by UUID.
core="$tree/boot/hiveboot-grub/core.img"
[ $(( ($(stat -c %s "$core") + 511) / 512 )) -lt "$esp_start" ] || fail "GRUB core.img does not fit before partition 1"
dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="$img" bs=440 count=1 conv=notrunc status=none
dd if="$core" of="$img" bs=512 seek=1 conv=notrunc status=none

mv -f "$img" "$out"   # a new inode: a host's overlay open on the old golden keeps reading the old one
cat >"$info_file" <<EOF
key=$image_key
suite=$suite
kernel=$kver
root_uuid=$root_uuid
root_offset=$((root_start * 512))
cmdline=$kcmdline
k3s=$([ -n "$k3s_binary" ] && echo "sha256:$k3s_sha" || echo none)
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
finish_stage

echo
echo "build-image: $out"
printf '  %-10s %s\n' suite "$suite" kernel "$kver" "root UUID" "$root_uuid" \
  size "$(du -h --apparent-size "$out" | cut -f1) apparent, $(du -h "$out" | cut -f1) allocated" \
  initrd "$(du -h "$tree/boot/initrd.img-$kver" | cut -f1)"
if [ -n "$k3s_binary" ]; then
  printf '  %-10s %s\n' k3s "installed (sha256 $k3s_sha)"
else
  printf '  %-10s %s\n' k3s "NOT installed (no --k3s-binary / --k3s-version): hosts boot and apply their config; k3s-agent starts once /usr/local/bin/k3s exists"
fi
echo "  stages:"
printf '  %s\n' "${SUMMARY[@]}"
printf '  %8ss  total\n' "$(elapsed "$T0")"
