#!/usr/bin/env bash
# capture-dhcp-fixtures.sh — records golden DHCP packets from real clients into test/dhcp/fixtures/.
#
# The codec tests (test/dhcp/*.test.ts) decode these files, so they need neither QEMU nor root; run
# this script again only to refresh the fixtures (e.g. after a Debian upgrade of a client) and review
# the diff: the tests assert what each client sends, so a changed client shows up as a failing test.
#
# What it does, all of it inside three network namespaces it creates and deletes itself
# (hbcap<PID>-lan, -srv, -cli); no real interface is touched and no packet leaves them:
#
#   ns -lan   br0 bridge (tcpdump listens here, promiscuous, so it sees unicasts between ports too)
#             tap0 (QEMU SeaBIOS + iPXE ROM guest), tap1 (QEMU OVMF guest), and the bridge ends of:
#   ns -srv   srv0 192.0.2.1/24: a DHCP-only dnsmasq (no DNS, no TFTP, --no-ping), pool .100-.199,
#             boot file for PXE clients, iPXE option 175.176 = 1 for iPXE clients
#   ns -cli   cli0: busybox udhcpc
#
# Clients, one after the other (MACs are fixed so the tests can assert them):
#   52:54:00:77:00:01  busybox udhcpc, defaults: DISCOVER, REQUEST, renew REQUEST (SIGUSR1),
#                      RELEASE (-R, on SIGTERM)
#   52:54:00:77:00:0b  busybox udhcpc -C -V hiveboot-capture -x 0x4d:<RFC 3004 user classes
#                      "hiveboot","rack-7"> -x hostname:capture-b -q: DISCOVER (no client id)
#   52:54:00:77:00:02  QEMU pc + SeaBIOS, virtio-net-pci with QEMU's iPXE option ROM, boot order n:
#                      DISCOVER/REQUEST with option 175 and user class "iPXE"
#   52:54:00:77:00:03  QEMU q35 + OVMF, virtio-net-pci with romfile= (no iPXE ROM), so EDK2's own
#                      PxeBcDxe sends DISCOVER/REQUEST with option 93 = 7, PXEClient:Arch:00007
# Each QEMU guest runs only until dnsmasq has ACKed its DHCPREQUEST (or GUEST_TIMEOUT), then is killed by
# PID. Software emulation (TCG) is used unless kvm_intel/kvm_amd is loaded: under the nested kvm_pvm
# of some CI hosts iPXE hangs at "starting execution" (see shared/eval/pxe/README.md).
#
# Output: one JSON file per packet, test/dhcp/fixtures/<name>.json:
#   { name, description, client, server, captured (UTC), capturedBy, frame {srcMac, src, dst}, hex }
# where hex is the UDP payload (the whole DHCP message) of the captured frame.
#
# Usage: sudo scripts/capture-dhcp-fixtures.sh [--out DIR] [--keep-work]
#   env: ACCEL=auto|kvm|tcg  GUEST_TIMEOUT=90 (seconds per QEMU guest)
# Needs (scripts/install-deps.sh installs them): qemu-system-x86 ipxe-qemu ovmf busybox dnsmasq-base
# tcpdump python3. Runs as root (namespaces, taps). Cleans up by itself, also on error or Ctrl-C:
# stops only the processes it started (by PID) and deletes only the namespaces it created.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/test/dhcp/fixtures
KEEP_WORK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift ;;
    --keep-work) KEEP_WORK=1 ;;
    -h | --help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "capture-dhcp-fixtures: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
ACCEL=${ACCEL:-auto}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-90}

[ "$(id -u)" -eq 0 ] || { echo "capture-dhcp-fixtures: must run as root (network namespaces, tap devices)" >&2; exit 1; }
for cmd in ip qemu-system-x86_64 busybox dnsmasq tcpdump python3; do
  command -v "$cmd" >/dev/null || { echo "capture-dhcp-fixtures: $cmd missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -r "$OVMF_CODE" ] || { echo "capture-dhcp-fixtures: $OVMF_CODE missing (package ovmf)" >&2; exit 1; }
if [ "$ACCEL" = auto ]; then
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then ACCEL=kvm; else ACCEL=tcg; fi
fi

TAG=hbcap$$
NS_LAN=$TAG-lan NS_SRV=$TAG-srv NS_CLI=$TAG-cli
SRV_IP=192.0.2.1 # RFC 5737 documentation range; exists only inside NS_SRV
MAC_UDHCPC=52:54:00:77:00:01 MAC_UDHCPC_B=52:54:00:77:00:0b MAC_IPXE=52:54:00:77:00:02 MAC_OVMF=52:54:00:77:00:03
UUID_IPXE=8a5f3c1e-2b4d-4e6f-9a1b-0c2d3e4f5a02
UUID_OVMF=8a5f3c1e-2b4d-4e6f-9a1b-0c2d3e4f5a03
WORK=$(mktemp -d /tmp/hbcap.XXXXXX)
chmod 755 "$WORK" # dnsmasq drops to user nobody after opening its files
PCAP=$WORK/dhcp.pcap

PIDS=() # every process we started, stopped by PID in reverse order
NETNS_MADE=()
log() { printf '%s capture-dhcp-fixtures: %s\n' "$(date +%T)" "$*" >&2; }

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL; only a PID this script started
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? i ns
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  for ((i = ${#NETNS_MADE[@]} - 1; i >= 0; i--)); do
    ns=${NETNS_MADE[$i]}
    if [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; then
      log "WARNING: processes left in netns $ns ($(ip netns pids "$ns" | tr '\n' ' ')); not deleting it"
    else
      ip netns del "$ns"
    fi
  done
  if [ "$KEEP_WORK" = 1 ] || [ "$rc" -ne 0 ]; then log "work files kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- network
for ns in "$NS_LAN" "$NS_SRV" "$NS_CLI"; do
  ip netns add "$ns"
  NETNS_MADE+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$NS_LAN" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$NS_LAN" link set br0 up
ip -n "$NS_LAN" link add srv0-br type veth peer name srv0 netns "$NS_SRV"
ip -n "$NS_LAN" link add cli0-br type veth peer name cli0 netns "$NS_CLI"
for dev in srv0-br cli0-br; do ip -n "$NS_LAN" link set "$dev" master br0 up; done
for i in 0 1; do
  ip -n "$NS_LAN" tuntap add dev "tap$i" mode tap
  ip -n "$NS_LAN" link set "tap$i" master br0 up
done
ip -n "$NS_SRV" addr add "$SRV_IP/24" dev srv0
ip -n "$NS_SRV" link set srv0 up
ip -n "$NS_CLI" link set cli0 address "$MAC_UDHCPC"
ip -n "$NS_CLI" link set cli0 up
# nothing routes anywhere: no default route in any namespace we made
for ns in "$NS_LAN" "$NS_SRV" "$NS_CLI"; do
  if ip -n "$ns" route show default | grep -q .; then log "unexpected default route in $ns"; exit 1; fi
done

# ---------------------------------------------------------------- capture + DHCP server
ip netns exec "$NS_LAN" tcpdump -i br0 -n -U -s 0 -w "$PCAP" 'udp and (port 67 or port 68 or port 4011)' \
  2>"$WORK/tcpdump.log" &
PIDS+=($!)
for _ in $(seq 50); do grep -q 'listening on' "$WORK/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$WORK/tcpdump.log" || { log "tcpdump did not start: $(cat "$WORK/tcpdump.log")"; exit 1; }

cat >"$WORK/dnsmasq.conf" <<EOF
port=0
interface=srv0
bind-interfaces
no-ping
log-dhcp
log-facility=$WORK/dnsmasq.log
dhcp-leasefile=$WORK/dnsmasq.leases
dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,1h
dhcp-authoritative
dhcp-option=option:router,$SRV_IP
dhcp-match=set:ipxe,175
dhcp-option=tag:ipxe,encap:175,176,1
dhcp-boot=tag:ipxe,http://$SRV_IP/boot.ipxe
dhcp-boot=tag:!ipxe,snponly.efi,,$SRV_IP
EOF
: >"$WORK/dnsmasq.log"
chmod 666 "$WORK/dnsmasq.log"
ip netns exec "$NS_SRV" dnsmasq --conf-file="$WORK/dnsmasq.conf" --keep-in-foreground \
  --pid-file="$WORK/dnsmasq.pid" >"$WORK/dnsmasq.out" 2>&1 &
PIDS+=($!)
sleep 0.5
kill -0 "${PIDS[-1]}" 2>/dev/null || { log "dnsmasq died: $(cat "$WORK/dnsmasq.out")"; exit 1; }

# The extractor: pcap -> DHCP messages. Also used while waiting ("has MAC sent message type N?").
cat >"$WORK/dhcp_pcap.py" <<'EOF'
import json, struct, sys

def packets(path):
    """Yields (src_mac, src, dst, payload) for each UDP/IPv4 frame of an Ethernet pcap."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    endian = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + 'IIII', data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b'\x08\x00':
            continue
        ihl = (frame[14] & 0x0f) * 4
        if frame[23] != 17:
            continue
        ip = frame[14:]
        src_ip, dst_ip = '.'.join(map(str, ip[12:16])), '.'.join(map(str, ip[16:20]))
        udp = ip[ihl:]
        sport, dport, ulen = struct.unpack('>HHH', udp[:6])
        payload = udp[8:ulen]
        if len(payload) != ulen - 8:
            continue  # truncated capture
        yield (':'.join('%02x' % b for b in frame[6:12]), '%s:%d' % (src_ip, sport), '%s:%d' % (dst_ip, dport), payload)

def message(payload):
    """(op, chaddr, ciaddr, message type) of a DHCP payload, or None."""
    if len(payload) < 240 or payload[236:240] != b'\x63\x82\x53\x63':
        return None
    op, hlen = payload[0], min(payload[2], 16)
    chaddr = ':'.join('%02x' % b for b in payload[28:28 + hlen])
    ciaddr = '.'.join(map(str, payload[12:16]))
    i, mtype = 240, None
    while i < len(payload) and payload[i] != 255:
        if payload[i] == 0:
            i += 1
            continue
        if i + 1 >= len(payload):
            break
        code, ln = payload[i], payload[i + 1]
        if code == 53 and ln == 1 and i + 2 < len(payload):
            mtype = payload[i + 2]
        i += 2 + ln
    return op, chaddr, ciaddr, mtype

def find(path, mac, op, mtype, renewing=None, nth=0):
    seen = 0
    for src_mac, src, dst, payload in packets(path):
        m = message(payload)
        if not m or m[0] != op or m[1] != mac or m[3] != mtype:
            continue
        if renewing is not None and (m[2] != '0.0.0.0') != renewing:
            continue
        if seen == nth:
            return src_mac, src, dst, payload
        seen += 1
    return None

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'has':  # has PCAP MAC OP MTYPE
        sys.exit(0 if find(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])) else 1)
    if cmd == 'extract':  # extract PCAP SPEC.json OUTDIR
        spec = json.load(open(sys.argv[3]))
        missing = []
        for fx in spec['fixtures']:
            hit = find(sys.argv[2], fx['mac'], fx['op'], fx['type'], fx.get('renewing'))
            if not hit:
                (missing.append(fx['name']) if fx.get('required', True) else None)
                print('not captured: %s' % fx['name'], file=sys.stderr)
                continue
            src_mac, src, dst, payload = hit
            out = {
                'name': fx['name'],
                'description': fx['description'],
                'client': fx['client'],
                'server': spec['server'],
                'captured': spec['captured'],
                'capturedBy': 'scripts/capture-dhcp-fixtures.sh',
                'frame': {'srcMac': src_mac, 'src': src, 'dst': dst},
                'hex': payload.hex(),
            }
            with open('%s/%s.json' % (sys.argv[4], fx['name']), 'w') as f:
                json.dump(out, f, indent=2)
                f.write('\n')
            print('%-32s %4d bytes  %s -> %s' % (fx['name'], len(payload), src, dst), file=sys.stderr)
        if missing:
            print('required fixtures missing: %s' % ', '.join(missing), file=sys.stderr)
            sys.exit(1)
EOF
has() { python3 "$WORK/dhcp_pcap.py" has "$PCAP" "$@"; }
wait_for() { # wait_for SECONDS CMD...: poll CMD every 0.25 s
  local deadline=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

# ---------------------------------------------------------------- busybox udhcpc
cat >"$WORK/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc event script: configure the lease on the interface (a RELEASE is sent from the leased address)
echo "$1 ${ip:-}" >>"$UDHCPC_EVENTS"
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound | renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
EOF
chmod +x "$WORK/udhcpc.script"
export UDHCPC_EVENTS=$WORK/udhcpc.events
: >"$UDHCPC_EVENTS"
events_at_least() { [ "$(grep -c "^$1 " "$UDHCPC_EVENTS")" -ge "$2" ]; } # EVENT N

log "udhcpc ($MAC_UDHCPC): discover, request, renew, release"
ip netns exec "$NS_CLI" busybox udhcpc -f -i cli0 -t 3 -T 2 -A 2 -R -s "$WORK/udhcpc.script" \
  >"$WORK/udhcpc-a.log" 2>&1 &
UDHCPC_PID=$!
PIDS+=("$UDHCPC_PID")
wait_for 20 events_at_least bound 1 || { log "udhcpc got no lease: $(cat "$WORK/udhcpc-a.log")"; exit 1; }
kill -USR1 "$UDHCPC_PID"
wait_for 10 events_at_least renew 1 || log "udhcpc renew not acknowledged"
kill -TERM "$UDHCPC_PID" # with -R: DHCPRELEASE, then exit
wait_for 5 has "$MAC_UDHCPC" 1 7 || log "no DHCPRELEASE seen"
wait "$UDHCPC_PID" 2>/dev/null || true

log "udhcpc ($MAC_UDHCPC_B): RFC 3004 user class, own vendor class, no client id"
ip -n "$NS_CLI" addr flush dev cli0
ip -n "$NS_CLI" link set cli0 down
ip -n "$NS_CLI" link set cli0 address "$MAC_UDHCPC_B"
ip -n "$NS_CLI" link set cli0 up
# 77 = 08 "hiveboot" 06 "rack-7" (RFC 3004: each class length-prefixed)
ip netns exec "$NS_CLI" busybox udhcpc -f -q -n -i cli0 -t 3 -T 2 -C -V hiveboot-capture \
  -x 0x4d:0868697665626f6f74067261636b2d37 -x hostname:capture-b -s "$WORK/udhcpc.script" \
  >"$WORK/udhcpc-b.log" 2>&1 &
PIDS+=($!)
wait "${PIDS[-1]}" || log "udhcpc -q exited $?: $(cat "$WORK/udhcpc-b.log")"

# ---------------------------------------------------------------- QEMU guests
run_guest() { # run_guest NAME MAC TIMEOUT QEMU-ARGS...: until MAC's DHCPREQUEST is answered, or timeout
  local name=$1 mac=$2 timeout=$3 pid; shift 3
  log "$name ($mac): QEMU accel=$ACCEL, up to ${timeout}s"
  ip netns exec "$NS_LAN" qemu-system-x86_64 -accel "$ACCEL" -display none -no-reboot -no-user-config \
    -serial "file:$WORK/$name.serial" -monitor none "$@" >"$WORK/$name.qemu.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if wait_for "$timeout" has "$mac" 2 5; then
    sleep 0.5
  else
    log "$name: no DHCPACK for $mac within ${timeout}s (serial: $(tr -cd '[:print:]\n' <"$WORK/$name.serial" | tail -3 | tr '\n' ' '))"
    kill -0 "$pid" 2>/dev/null || log "$name: QEMU exited: $(tail -3 "$WORK/$name.qemu.log")"
  fi
  stop_pid "$pid"
}

printf '\xf8\x03' >"$WORK/sercon.bin" # SeaBIOS: mirror VGA text (iPXE's messages) to COM1 0x3f8
run_guest ipxe-bios "$MAC_IPXE" "$GUEST_TIMEOUT" -machine pc -m 256 -smp 1 -vga std -boot n \
  -uuid "$UUID_IPXE" -fw_cfg "name=etc/sercon-port,file=$WORK/sercon.bin" \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
  -device "virtio-net-pci,netdev=n0,mac=$MAC_IPXE,bootindex=1"

cp "$OVMF_VARS" "$WORK/ovmf-vars.fd"
run_guest ovmf-pxe "$MAC_OVMF" "$GUEST_TIMEOUT" -machine q35 -m 512 -smp 1 -vga none \
  -uuid "$UUID_OVMF" \
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
  -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd" \
  -netdev tap,id=n1,ifname=tap1,script=no,downscript=no \
  -device "virtio-net-pci,netdev=n1,mac=$MAC_OVMF,bootindex=1,romfile="

stop_pid "${PIDS[0]}" # tcpdump: flush the capture

# ---------------------------------------------------------------- fixtures
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
BUSYBOX="busybox udhcpc $(busybox 2>&1 | head -1 | awk '{print $2}') (Debian package busybox $(pkgver busybox))"
QEMU="QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') (qemu-system-x86 $(pkgver qemu-system-x86)), accel $ACCEL"
IPXE="QEMU's iPXE option ROM efi-virtio.rom (ipxe-qemu $(pkgver ipxe-qemu)) on virtio-net-pci, SeaBIOS $(pkgver seabios), $QEMU"
OVMF="OVMF EDK2 PxeBcDxe (ovmf $(pkgver ovmf)), VirtioNetDxe on virtio-net-pci with romfile= (no iPXE ROM), q35, $QEMU"
SERVER="dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}') (dnsmasq-base $(pkgver dnsmasq-base)), DHCP only, pool 192.0.2.100-199, boot file snponly.efi (next-server $SRV_IP), iPXE: http://$SRV_IP/boot.ipxe + option 175.176=1"
export BUSYBOX IPXE OVMF SERVER MAC_UDHCPC MAC_UDHCPC_B MAC_IPXE MAC_OVMF UUID_IPXE UUID_OVMF
CAPTURED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
export CAPTURED
python3 - >"$WORK/spec.json" <<'EOF'
import json, os
e = os.environ
def fx(name, mac, op, mtype, client, description, renewing=None, required=True):
    d = {'name': name, 'mac': mac, 'op': op, 'type': mtype, 'client': client, 'description': description, 'required': required}
    if renewing is not None:
        d['renewing'] = renewing
    return d
dnsmasq = 'dnsmasq (reply)'
fixtures = [
    fx('udhcpc-discover', e['MAC_UDHCPC'], 1, 1, e['BUSYBOX'], 'DHCPDISCOVER from busybox udhcpc with its defaults (client id 01+MAC, vendor class "udhcp <version>", max size 576)', False),
    fx('udhcpc-request', e['MAC_UDHCPC'], 1, 3, e['BUSYBOX'], 'DHCPREQUEST (SELECTING: requested IP 50 and server id 54) from busybox udhcpc after the dnsmasq offer', False),
    fx('udhcpc-request-renew', e['MAC_UDHCPC'], 1, 3, e['BUSYBOX'], 'DHCPREQUEST (RENEWING after SIGUSR1: ciaddr set, unicast, no 50/54) from busybox udhcpc', True),
    fx('udhcpc-release', e['MAC_UDHCPC'], 1, 7, e['BUSYBOX'], 'DHCPRELEASE from busybox udhcpc -R on SIGTERM (unicast from the leased address)'),
    fx('dnsmasq-offer-udhcpc', e['MAC_UDHCPC'], 2, 2, e['SERVER'], 'DHCPOFFER from dnsmasq to busybox udhcpc'),
    fx('dnsmasq-ack-udhcpc', e['MAC_UDHCPC'], 2, 5, e['SERVER'], 'DHCPACK from dnsmasq to busybox udhcpc (SELECTING request)'),
    fx('udhcpc-userclass-discover', e['MAC_UDHCPC_B'], 1, 1, e['BUSYBOX'] + ', run as: udhcpc -C -V hiveboot-capture -x 0x4d:0868697665626f6f74067261636b2d37 -x hostname:capture-b', 'DHCPDISCOVER from busybox udhcpc with an RFC 3004 user class (77 = "hiveboot", "rack-7"), vendor class "hiveboot-capture", hostname, no client id'),
    fx('ipxe-bios-discover', e['MAC_IPXE'], 1, 1, e['IPXE'], 'DHCPDISCOVER from iPXE (QEMU option ROM, BIOS): option 175, user class "iPXE" (bare string), arch 0, UUID ' + e['UUID_IPXE']),
    fx('ipxe-bios-request', e['MAC_IPXE'], 1, 3, e['IPXE'], 'DHCPREQUEST from iPXE (QEMU option ROM, BIOS)'),
    fx('dnsmasq-offer-ipxe', e['MAC_IPXE'], 2, 2, e['SERVER'], 'DHCPOFFER from dnsmasq to iPXE: file http://192.0.2.1/boot.ipxe, option 175 with 176 = 1'),
    fx('dnsmasq-ack-ipxe', e['MAC_IPXE'], 2, 5, e['SERVER'], 'DHCPACK from dnsmasq to iPXE'),
    fx('ovmf-pxe-discover', e['MAC_OVMF'], 1, 1, e['OVMF'], 'DHCPDISCOVER from OVMF (EDK2 PXE, x86-64 UEFI): option 93 = 7, vendor class PXEClient:Arch:00007, UUID ' + e['UUID_OVMF']),
    fx('ovmf-pxe-request', e['MAC_OVMF'], 1, 3, e['OVMF'], 'DHCPREQUEST from OVMF (EDK2 PXE, x86-64 UEFI)'),
    fx('dnsmasq-offer-ovmf', e['MAC_OVMF'], 2, 2, e['SERVER'], 'DHCPOFFER from dnsmasq to OVMF PXE: file snponly.efi, siaddr 192.0.2.1'),
]
print(json.dumps({'server': e['SERVER'], 'captured': e['CAPTURED'], 'fixtures': fixtures}))
EOF
mkdir -p "$WORK/fixtures"
python3 "$WORK/dhcp_pcap.py" extract "$PCAP" "$WORK/spec.json" "$WORK/fixtures"
mkdir -p "$OUT"
cp "$WORK"/fixtures/*.json "$OUT/"
log "wrote $(ls "$WORK"/fixtures/*.json | wc -l) fixtures to $OUT"
