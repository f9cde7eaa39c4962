#!/usr/bin/env bash
# Installs what building, running and testing hiveboot needs on Debian 12/13, idempotently:
# Node.js >= 20 (checked, not installed: Debian 12's own nodejs is 18), the compiler toolchain that
# better-sqlite3 builds with, and the npm dependencies (npm ci, which also compiles dist/).
# Later subsystems add their apt packages (qemu, ipxe, tgt, dnsmasq, ceph) to APT_PACKAGES.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 make g++ curl ca-certificates ipxe atftp tftp-hpa qemu-system-x86 ipxe-qemu ovmf busybox dnsmasq-base tcpdump libiscsi-bin tgt fio qemu-utils qemu-block-extra systemd shellcheck
  ceph-mon ceph-mgr ceph-osd ceph-common librbd1 tgt-rbd)

need_node_major=20
if ! command -v node >/dev/null 2>&1; then
  echo "install-deps: Node.js >= ${need_node_major} is required (https://nodejs.org or your distribution's nodejs package)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt "$need_node_major" ]; then
  echo "install-deps: Node.js $(node --version) is too old; hiveboot needs >= ${need_node_major}" >&2
  exit 1
fi

. scripts/lib/apt.sh
ensure_debian_packages install-deps "${APT_PACKAGES[@]}"

# The iPXE builds TFTP serves (from Debian's ipxe package) into netboot/.
bash scripts/netboot.sh

# npm ci when node_modules is missing or older than the lock file; "prepare" builds dist/.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ ! -d node_modules/better-sqlite3/build ]; then
  echo "install-deps: npm ci (better-sqlite3 compiles from source: about a minute)"
  npm ci --no-audit --no-fund
else
  npm run --silent build
fi
