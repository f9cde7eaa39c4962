#!/usr/bin/env bash
# hiveboot tour on this machine's loopback: starts the daemon with the embedded defaults, registers a
# profile and a worker, and shows what a machine sees at each step — the bootstrap script, its own
# sanboot script, and for an unknown machine discovery, approval and the timeline.
# (scripts/demo.sh is the one that boots a VM; this is the API and CLI tour on loopback.)
# Runs until Ctrl-C when started from a terminal; otherwise stops after the walk-through.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >&2

PORT=${HIVEBOOT_DEMO_PORT:-8080}
DIR=$PWD/.tmp/tour
rm -rf "$DIR"
mkdir -p "$DIR"
chmod 700 "$DIR"
cat >"$DIR/hiveboot.yaml" <<YAML
# Only the listen address and a state directory: everything else is the embedded default.
stateDir: $DIR/state
http:
  listen: 127.0.0.1
  port: $PORT
tftp:
  listen: 127.0.0.1
  port: $((PORT + 1))
YAML

node bin/hiveboot.js serve --config "$DIR/hiveboot.yaml" >"$DIR/hiveboot.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 50); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "tour: hiveboot did not start:" >&2; cat "$DIR/hiveboot.log" >&2; exit 1; }
  sleep 0.2
done

hb() { node bin/hiveboot.js --config "$DIR/hiveboot.yaml" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "hiveboot is up at $URL (API token in $DIR/state/api-token, mode $(stat -c %a "$DIR/state/api-token"))"
curl -fsS "$URL/healthz"; echo

step "a profile: boot the host's own iSCSI disk, K3s label role=worker"
hb profile add debian-k3s --description "Debian 12 + K3s agent" --k3s-label role=worker

step "a worker with a disk entered by hand (the built-in target arrives with the iSCSI issue)"
head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 14 >"$DIR/chap-secret"
hb host add --mac 52:54:00:aa:bb:cc --hostname w1 --profile debian-k3s \
  --portal 127.0.0.1:3260 --target-iqn iqn.2026-01.io.hiveboot:w1 \
  --chap-user w1-initiator --chap-secret-file "$DIR/chap-secret"
hb host list

step "what PXE firmware downloads first, by TFTP (read-only, from netboot/)"
for f in undionly.kpxe snponly.efi; do
  printf '%-14s %s bytes by TFTP, identical to netboot/: ' "$f" "$(curl -s "tftp://127.0.0.1:$((PORT + 1))/$f" | tee "$DIR/$f" | wc -c)"
  cmp -s "$DIR/$f" "netboot/$f" && echo yes || echo NO
done

step "what every machine's iPXE gets from DHCP: GET /boot.ipxe"
curl -fsS "$URL/boot.ipxe"

step "what w1 gets: GET /boot/52:54:00:aa:bb:cc.ipxe"
curl -fsS "$URL/boot/52:54:00:aa:bb:cc.ipxe"

step "an unknown machine powers on: it gets the discovery script"
curl -fsS "$URL/boot/52:54:00:12:34:56.ipxe?buildarch=x86_64&platform=efi&manufacturer=QEMU&product=Standard%20PC"
hb host list

step "approve it: it gets node-123456, the default profile is not set up, so name one"
hb host approve 52:54:00:12:34:56 --profile debian-k3s
hb host show 52:54:00:12:34:56

step "its timeline: why did it get what it got?"
hb host events 52:54:00:12:34:56

step "bad input gets a clear reason and a non-zero exit"
hb host add --mac 52:54:00:aa:bb:cc --hostname w2 || true
hb host add --mac nonsense --hostname 'w2;shell' || true

if [ -t 0 ]; then
  step "hiveboot keeps running at $URL (OpenAPI UI at $URL/docs); Ctrl-C stops it"
  wait "$pid"
else
  step "done (log: $DIR/hiveboot.log)"
fi
