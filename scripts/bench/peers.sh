#!/usr/bin/env bash
# Fetches the peers the benchmark compares against, without installing them as services: the
# tftpd-hpa package would start a TFTP server on every interface, so its binary is extracted into
# .tmp/peers/ instead. dnsmasq (dnsmasq-base) has no service and comes from install-deps.sh, as do
# the boot bench's peers (tgt, tcpdump, python3, qemu-system-x86, ipxe-qemu).
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.tmp/peers
# in.tftpd links against libwrap (a library, no service).
. scripts/lib/apt.sh
ensure_debian_packages bench libwrap0
if [ -x "$dest/usr/sbin/in.tftpd" ]; then exit 0; fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download tftpd-hpa >/dev/null 2>&1 || { apt-get update -qq && apt-get download tftpd-hpa; })
dpkg -x "$work"/tftpd-hpa_*.deb "$dest"
echo "peers: tftpd-hpa extracted to $dest/usr/sbin/in.tftpd"
