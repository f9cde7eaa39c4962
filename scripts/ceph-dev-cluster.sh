#!/usr/bin/env bash
# A throw-away single-node Ceph cluster for hiveboot's RBD tests and for trying RBD-backed disks on
# one machine: one monitor, one manager and one bluestore OSD on a sparse file, all on 127.0.0.1 with
# cephx, every file of it (data, keys, logs, PIDs) under one directory.
#
#   bash scripts/ceph-dev-cluster.sh up     [--dir DIR] [--fresh]   start it (bootstrap on first use)
#   bash scripts/ceph-dev-cluster.sh down   [--dir DIR] [--purge]   stop it (--purge: and delete DIR)
#   bash scripts/ceph-dev-cluster.sh status [--dir DIR]             exit 0 when up and healthy
#   bash scripts/ceph-dev-cluster.sh env    [--dir DIR]             the settings hiveboot needs:
#       CEPH_CONF=… CEPH_KEYRING=… CEPH_CLIENT=client.hiveboot CEPH_POOL=hiveboot (one per line;
#       `set -a; eval "$(bash scripts/ceph-dev-cluster.sh env)"; set +a` exports them)
#
# DIR defaults to $HIVEBOOT_CEPH_DIR, else /var/cache/hiveboot-ceph.
# `up` returns when the cluster is usable (OSD up, every placement group active+clean, an object
# written and read back as client.hiveboot); run again while up it only checks that (about a second).
# Two `up`s at once are serialised by a lock on DIR/.lock; the second finds the cluster running.
# It makes pool `hiveboot` (size 1, application rbd) and client.hiveboot with only the caps hiveboot
# needs (mon 'profile rbd', osd and mgr 'profile rbd pool=hiveboot'), keyring DIR/client.hiveboot.keyring
# (0600). The admin key is DIR/admin.keyring: `ceph -c DIR/ceph.conf -s` works as client.admin.
# Daemons are stopped by the PIDs recorded in DIR/pids, and only while /proc/PID/cmdline still names
# DIR/ceph.conf. Ports: the monitor takes the first free of 13300+ (msgr2) and 16789+ (msgr1); the
# OSD and manager bind in 16800-17300, away from a default cluster's 3300/6789/6800-7300.
#
# Knobs: HIVEBOOT_CEPH_OSD_SIZE (bytes of the sparse OSD file, default 10 GiB),
#        HIVEBOOT_CEPH_TIMEOUT (seconds `up` waits for each step, default 120).
# Needs Debian's ceph-mon ceph-mgr ceph-osd ceph-common (scripts/install-deps.sh installs them).
set -euo pipefail

usage() {
  echo "usage: $0 up|down|status|env [--dir DIR] [--fresh] [--purge]" >&2
  exit 2
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
dir=${HIVEBOOT_CEPH_DIR:-/var/cache/hiveboot-ceph}
fresh=0
purge=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    --dir=*) dir=${1#--dir=}; shift ;;
    --fresh) fresh=1; shift ;;
    --purge) purge=1; shift ;;
    *) usage ;;
  esac
done
case $cmd in
  up) [ $purge = 0 ] || usage ;;
  down) [ $fresh = 0 ] || usage ;;
  status | env) if [ $fresh = 1 ] || [ $purge = 1 ]; then usage; fi ;;
  *) usage ;;
esac

POOL=hiveboot
CLIENT=client.hiveboot
DAEMONS=(mon.a mgr.x osd.0) # start order; stopped in reverse
OSD_SIZE=${HIVEBOOT_CEPH_OSD_SIZE:-10737418240}
TIMEOUT=${HIVEBOOT_CEPH_TIMEOUT:-120}
MARKER=.hiveboot-ceph   # this script made DIR: it may wipe it
READY=.bootstrapped     # pool and client exist: a restart need not make them again
started_ns=$(date +%s%N)

say() {
  local ms=$(( ($(date +%s%N) - started_ns) / 1000000 ))
  printf 'ceph-dev-cluster [%d.%ds] %s\n' $((ms / 1000)) $(((ms % 1000) / 100)) "$*" >&2
}
fail() {
  say "error: $*"
  exit 1
}

if [ "$cmd" != up ] && [ ! -d "$dir" ]; then
  case $cmd in
    down) say "no cluster in $dir"; exit 0 ;;
    status) echo "no cluster in $dir"; exit 1 ;;
    env) fail "no cluster in $dir (run: $0 up${dir:+ --dir $dir})" ;;
  esac
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
conf=$dir/ceph.conf
admin_keyring=$dir/admin.keyring
client_keyring=$dir/$CLIENT.keyring

print_env() {
  printf 'CEPH_CONF=%q\nCEPH_KEYRING=%q\nCEPH_CLIENT=%s\nCEPH_POOL=%s\n' "$conf" "$client_keyring" "$CLIENT" "$POOL"
}

if [ "$cmd" = env ]; then
  [ -f "$dir/$READY" ] || fail "no finished cluster in $dir (run: $0 up --dir $dir)"
  print_env
  exit 0
fi

for bin in ceph ceph-mon ceph-mgr ceph-osd ceph-authtool monmaptool rados rbd flock setsid timeout python3; do
  command -v "$bin" >/dev/null || fail "$bin is missing: apt-get install --no-install-recommends ceph-mon ceph-mgr ceph-osd ceph-common"
done

# --- daemons by recorded PID ------------------------------------------------------------------

# Prints the PID of daemon $1 of this directory when it is alive (not a zombie, not a recycled PID).
daemon_pid() {
  local file=$dir/pids/$1.pid pid cmdline state
  [ -f "$file" ] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *" -c $conf "* ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  echo "$pid"
}

start_daemon() { # start_daemon mon.a
  local name=$1 type=${1%%.*} id=${1#*.} pid exe
  if pid=$(daemon_pid "$name"); then return 0; fi
  mkdir -p "$dir/pids" "$dir/log"
  # Own session (outlives the caller's process group), foreground (-f: $! is the daemon itself),
  # and without the lock's descriptor 9, which would otherwise keep the lock held for its lifetime.
  setsid "ceph-$type" -c "$conf" -i "$id" -f </dev/null >>"$dir/log/$name.out" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$dir/pids/$name.pid"
  exe=$(readlink -f "$(command -v "ceph-$type")")
  for _ in $(seq 100); do # until the forked shell has exec'd the daemon
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" != "$exe" ] || break
    [ -d "/proc/$pid" ] || break
    sleep 0.02
  done
  say "started $name (pid $pid)"
}

stop_daemons() {
  local i name pid
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    if ! pid=$(daemon_pid "$name"); then
      rm -f "$dir/pids/$name.pid"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do daemon_pid "$name" >/dev/null || break; sleep 0.1; done
    if daemon_pid "$name" >/dev/null; then
      say "$name (pid $pid) ignored SIGTERM for 30 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do daemon_pid "$name" >/dev/null || break; sleep 0.1; done
    fi
    daemon_pid "$name" >/dev/null && fail "$name (pid $pid) is still running"
    rm -f "$dir/pids/$name.pid"
    say "stopped $name (pid $pid)"
  done
}

# --- questions to the cluster ----------------------------------------------------------------------

ceph_admin() { timeout 20 ceph -c "$conf" -n client.admin --connect-timeout 15 "$@"; }

# Runs python on the JSON of `ceph $1 -f json`; the expression's truth is the exit status.
# $2: a python expression over d (the document) and pid (the PID of $3's daemon, or 0).
json_true() {
  local what=$1 expr=$2 pid=0 json
  [ -z "${3:-}" ] || pid=$(daemon_pid "$3") || return 1
  # shellcheck disable=SC2086
  json=$(ceph_admin $what -f json 2>/dev/null) || return 1
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); pid=int(sys.argv[2]); sys.exit(0 if ($expr) else 1)" "$json" "$pid"
}

# The maps name a daemon's address with the daemon's PID as the nonce: these hold only once the
# process we started (not an earlier instance the monitor still believes in) is active or up.
mon_answers() { json_true 'mon dump' 'len(d["mons"]) == 1'; }
mgr_active() { json_true 'mgr dump' 'd["available"] and any(a["nonce"] == pid for a in d["active_addrs"]["addrvec"])' mgr.x; }
osd_up() {
  json_true 'osd dump' 'any(o["osd"] == 0 and o["up"] and o["in"] and any(a["nonce"] == pid for a in o["public_addrs"]["addrvec"]) for o in d["osds"])' osd.0
}
# Every placement group active+clean, counted by a manager that knows every pool (right after a pool
# is made, the manager can report a clean map that does not have its placement groups yet).
pgs_clean() {
  local pools
  pools=$(ceph_admin osd pool ls 2>/dev/null | grep -c .) || return 1
  json_true status "d['pgmap']['num_pools'] == $pools and d['pgmap']['num_pgs'] > 0 and \
sum(s['count'] for s in d['pgmap']['pgs_by_state'] if s['state_name'] == 'active+clean') == d['pgmap']['num_pgs']"
}
# The same as hiveboot does: client.hiveboot's key, its caps, the pool, one object in and out.
client_works() {
  local obj=ceph-dev-cluster-probe-$$
  timeout 30 rados -c "$conf" -n "$CLIENT" --keyring "$client_keyring" -p "$POOL" put "$obj" "$conf" &&
    timeout 30 rados -c "$conf" -n "$CLIENT" --keyring "$client_keyring" -p "$POOL" stat "$obj" >/dev/null &&
    timeout 30 rados -c "$conf" -n "$CLIENT" --keyring "$client_keyring" -p "$POOL" rm "$obj"
}

# Whether every daemon is running; prints why not (with its log's tail) when one has died.
all_alive() {
  local name
  for name in "${DAEMONS[@]}"; do
    daemon_pid "$name" >/dev/null && continue
    [ "${1:-}" = quiet ] && return 1
    echo "---- $dir/log/$name.log (tail) ----" >&2
    tail -n 25 "$dir/log/$name.log" >&2 2>/dev/null || true
    tail -n 10 "$dir/log/$name.out" >&2 2>/dev/null || true
    fail "$name is not running"
  done
}

wait_until() { # wait_until "what" command...
  local what=$1 deadline=$(($(date +%s) + TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    all_alive
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not after ${TIMEOUT}s (logs: $dir/log)"
    sleep 0.3
  done
  say "$what"
}

port_free() { # nothing listens on TCP port $1
  local hex
  hex=$(printf ':%04X' "$1")
  ! awk -v port="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
first_free_port() {
  local p=$1
  until port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

# --- status / down ------------------------------------------------------------------------------------

if [ "$cmd" = status ]; then
  up=0
  for name in "${DAEMONS[@]}"; do
    if pid=$(daemon_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; up=1; fi
  done
  if [ $up = 0 ]; then
    if health=$(ceph_admin health 2>&1); then echo "health: $health"; else echo "health: no answer ($health)"; up=1; fi
    [ -f "$dir/$READY" ] && print_env
  fi
  exit $up
fi

exec 9>"$dir/.lock"
flock -w 600 9 || fail "another ceph-dev-cluster.sh holds $dir/.lock"

if [ "$cmd" = down ]; then
  stop_daemons
  if [ $purge = 1 ]; then
    [ -f "$dir/$MARKER" ] || fail "not deleting $dir: ceph-dev-cluster.sh did not create it"
    rm -rf "$dir"
    say "deleted $dir"
  fi
  exit 0
fi

# --- up -----------------------------------------------------------------------------------------------

has_files() { # anything in DIR but the lock
  local f
  for f in "$dir"/* "$dir"/.[!.]*; do
    [ -e "$f" ] && [ "$f" != "$dir/.lock" ] && return 0
  done
  return 1
}

wipe() {
  if has_files && [ ! -f "$dir/$MARKER" ]; then
    fail "$dir holds files ceph-dev-cluster.sh did not make; not wiping it"
  fi
  stop_daemons
  find "$dir" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
}

# Whatever fails from here on leaves no daemon of this directory running.
on_exit() {
  local rc=$?
  [ $rc = 0 ] && return
  say "up failed: stopping the daemons of $dir"
  stop_daemons || true
  exit $rc
}
trap on_exit EXIT

if [ $fresh = 1 ]; then
  say "--fresh: wiping $dir"
  wipe
elif [ -f "$dir/$READY" ]; then
  if all_alive quiet && pgs_clean; then
    say "up (already running)"
    exit 0
  fi
  start_daemon mon.a
  wait_until "monitor answers" mon_answers
  start_daemon mgr.x
  start_daemon osd.0
  wait_until "manager active" mgr_active
  wait_until "OSD up" osd_up
  wait_until "placement groups active+clean" pgs_clean
  wait_until "client.hiveboot reads and writes pool $POOL" client_works
  say "up"
  exit 0
elif has_files; then
  [ -f "$dir/$MARKER" ] || fail "$dir holds files ceph-dev-cluster.sh did not make; not using it"
  say "an unfinished bootstrap in $dir: starting over"
  wipe
fi

# Bootstrap, as Ceph's own vstart.sh does it, by hand.
touch "$dir/$MARKER"
chmod 700 "$dir"
mkdir -p "$dir"/{mon.a,mgr.x,osd.0,log,run,pids}
fsid=$(cat /proc/sys/kernel/random/uuid)
msgr2=$(first_free_port 13300)
msgr1=$(first_free_port 16789)
mon_addr="[v2:127.0.0.1:$msgr2,v1:127.0.0.1:$msgr1]"

cat >"$conf" <<EOF
# Written by scripts/ceph-dev-cluster.sh: a single-node test cluster. Not for real data.
[global]
fsid = $fsid
mon host = $mon_addr
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
ms bind port min = 16800
ms bind port max = 17300
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $dir/run
crash dir = $dir/log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1

[client.admin]
keyring = $admin_keyring

[$CLIENT]
keyring = $client_keyring

[mon]
mon data = $dir/mon.\$id
keyring = $dir/mon.\$id/keyring
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
# Commit map changes within ~0.1 s instead of ~1 s: snapshots, pool changes and start-up are quicker.
paxos propose interval = 0.1
paxos min wait = 0.01

[mgr]
mgr data = $dir/mgr.\$id
keyring = $dir/mgr.\$id/keyring
log file = $dir/log/\$name.log
mgr initial modules = iostat

[osd]
osd data = $dir/osd.\$id
keyring = $dir/osd.\$id/keyring
log file = $dir/log/\$name.log
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $OSD_SIZE
bluestore fsck on mkfs = false
bluestore fsck on mount = false
osd memory target = 1073741824
EOF
say "bootstrapping in $dir (fsid $fsid, monitor $mon_addr)"

umask 077
ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$admin_keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$admin_keyring" >/dev/null
monmaptool --create --fsid "$fsid" --addv a "$mon_addr" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/mon.keyring" >>"$dir/log/mkfs.log" 2>&1 ||
  { tail -n 20 "$dir/log/mkfs.log" >&2; fail "ceph-mon --mkfs failed"; }
rm -f "$dir/mon.keyring" "$dir/monmap"
start_daemon mon.a
wait_until "monitor answers" mon_answers

ceph_admin auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$dir/mgr.x/keyring"
start_daemon mgr.x

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_key=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}\n' "$osd_key" >"$dir/osd.0/new.json"
osd_id=$(ceph_admin osd new "$osd_uuid" -i "$dir/osd.0/new.json")
rm -f "$dir/osd.0/new.json"
[ "$osd_id" = 0 ] || fail "the monitor gave OSD id '$osd_id', not 0"
printf '[osd.0]\n\tkey = %s\n' "$osd_key" >"$dir/osd.0/keyring"
ceph-osd -c "$conf" -i 0 --mkfs --key "$osd_key" --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1 ||
  { tail -n 20 "$dir/log/mkfs.log" >&2; fail "ceph-osd --mkfs failed"; }
start_daemon osd.0

wait_until "manager active" mgr_active
wait_until "OSD up" osd_up

out=$(ceph_admin osd pool create "$POOL" 16 16 replicated 2>&1) || fail "pool $POOL: $out"
timeout 60 rbd -c "$conf" -n client.admin pool init "$POOL"
ceph_admin auth get-or-create "$CLIENT" mon 'profile rbd' osd "profile rbd pool=$POOL" mgr "profile rbd pool=$POOL" \
  -o "$client_keyring"
chmod 600 "$client_keyring" "$admin_keyring"

wait_until "placement groups active+clean" pgs_clean
wait_until "client.hiveboot reads and writes pool $POOL" client_works
touch "$dir/$READY"
say "up"
