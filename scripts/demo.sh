#!/usr/bin/env bash
# The main job on this machine: hiveboot boots a real VM (QEMU) from its own copy-on-write iSCSI
# disk, with the timeline shown live. Installs what is missing (apt packages, npm ci), builds or
# reuses the golden image, then runs scripts/demo.ts. Needs root (network namespaces, apt).
# Ctrl-C stops everything it started and removes the lab network.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it creates network namespaces and a tap for the VM): sudo bash scripts/demo.sh" >&2
  exit 1
fi
bash scripts/install-deps.sh
exec node --import tsx scripts/demo.ts
