#!/usr/bin/env bash
# Fills netboot/ (the TFTP root) with the iPXE builds PXE firmware downloads, from Debian's ipxe
# package: undionly.kpxe (BIOS), snponly.efi and ipxe.efi (x86-64 UEFI), and the arm64 EFI builds
# when the package has them (named *-arm64.efi here). Idempotent: an identical file is left alone,
# and a file that differs from Debian's is taken for a custom build and kept unless --force is given.
# Installs the ipxe package with apt when it is missing (as root only).
#
#   bash scripts/netboot.sh [--force] [DIR]      (DIR defaults to netboot/)
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
dest=${1:-netboot}

. scripts/lib/apt.sh
ensure_debian_packages netboot ipxe

# The package's file list, not guessed paths: its layout has moved between Debian releases.
mapfile -t packaged < <(dpkg -L ipxe | grep -E '\.(kpxe|efi)$' || true)

# Prints the packaged path of an x86 build by name, preferring /usr/lib/ipxe over /boot.
find_build() {
  local name=$1 path found=
  for path in "${packaged[@]}"; do
    [ "$(basename "$path")" = "$name" ] || continue
    case "$path" in *arm64* | *aa64*) continue ;; esac
    [ -f "$path" ] || continue
    if [ -z "$found" ] || [[ "$path" == /usr/lib/ipxe/* ]]; then found=$path; fi
  done
  printf '%s' "$found"
}

install_build() {
  local src=$1 name=$2 target="$dest/$2"
  if [ -f "$target" ] && cmp -s "$src" "$target"; then
    echo "netboot: $target is up to date"
    return
  fi
  if [ -f "$target" ] && [ "$force" -eq 0 ]; then
    echo "netboot: keeping $target: it differs from $src (a custom build?); --force replaces it"
    return
  fi
  # Copy beside, then rename: the TFTP server never sees a half-written file.
  install -m 0644 "$src" "$target.tmp.$$"
  mv -f "$target.tmp.$$" "$target"
  echo "netboot: $target <- $src"
}

mkdir -p "$dest"
missing=()
for name in undionly.kpxe snponly.efi ipxe.efi; do
  src=$(find_build "$name")
  if [ -n "$src" ]; then install_build "$src" "$name"; else missing+=("$name"); fi
done

arm64=0
for path in "${packaged[@]}"; do
  case "$path" in *arm64*.efi | *aa64*.efi) ;; *) continue ;; esac
  [ -f "$path" ] || continue
  base=$(basename "$path" .efi)
  case "$base" in *arm64* | *aa64*) name="$base.efi" ;; *) name="$base-arm64.efi" ;; esac
  install_build "$path" "$name"
  arm64=1
done
[ "$arm64" -eq 1 ] || echo "netboot: this Debian's ipxe package has no arm64 EFI build; ARM64 UEFI machines need a custom one (see README)"

if [ ${#missing[@]} -gt 0 ]; then
  echo "netboot: the ipxe package has no ${missing[*]}" >&2
  exit 1
fi
