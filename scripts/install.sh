#!/usr/bin/env bash
# Installs hiveboot as a systemd service on Debian 12/13 or Ubuntu (22.04+), idempotently: a second
# run with nothing new changes nothing and restarts nothing.
#
#   sudo scripts/install.sh [--start] [--prefix DIR] [--node PATH] [--with-ceph]
#   sudo scripts/install.sh --uninstall [--purge]
#
# Run it from a built checkout: scripts/install-deps.sh (or npm ci) has made dist/ and node_modules/.
#
# What goes where, and why:
# - The application: PREFIX (default /opt/hiveboot) holds package.json, bin/, dist/, boot-templates/,
#   netboot/ and the production part of node_modules/ (the lock file's packages not marked dev: what
#   `npm ci --omit=dev` would install), copied from this checkout. Not a global npm install of an
#   `npm pack` tarball: that downloads every dependency again and compiles better-sqlite3 on the
#   server (registry access and a C++ toolchain there), and mixes hiveboot's dependencies into the
#   system's global node_modules. A directory of its own needs nothing on the server but node, is
#   replaced whole (a new tree beside it, then a rename) and removed whole.
# - Node.js >= 20, of the major that built node_modules/ (better-sqlite3 and koffi are native; checked
#   by loading them): the `node` on PATH, or --node PATH. Debian 12's and Ubuntu 24.04's own nodejs is
#   18: install Node.js 20+ first (the nodejs.org tarball under /usr/local, or NodeSource's package).
#   Where there is no node and the distribution's nodejs is new enough (Debian 13), apt installs it.
#   The node found is written into the unit's ExecStart; it must not live under /home or /root,
#   which the service cannot see (ProtectHome=).
# - Packages (apt): ipxe, whose boot files TFTP serves (copied into PREFIX/netboot by
#   scripts/netboot.sh); librbd1 with --with-ceph, or when /etc/hiveboot/hiveboot.yaml names Ceph/RBD.
# - The hiveboot system user and group: no login shell, no home.
# - /etc/hiveboot/hiveboot.yaml (root:hiveboot 0640) from scripts/hiveboot.sample.yaml when there is
#   none: an existing config file is never touched.
# - /var/lib/hiveboot (hiveboot, 0700): the database, the API token, the per-host disks.
# - /etc/systemd/system/hiveboot.service from scripts/hiveboot.service, enabled. --start starts it
#   (systemctl start returns once hiveboot has sent READY=1, i.e. every listener is up). An update of
#   the application or the unit restarts a running service.
#
# --uninstall stops and disables the service, removes the unit and PREFIX, and keeps /etc/hiveboot,
# /var/lib/hiveboot (the inventory, CHAP secrets, API token) and the hiveboot user; with --purge
# those go too.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
UNIT=/etc/systemd/system/hiveboot.service
CONF_DIR=/etc/hiveboot
CONF=$CONF_DIR/hiveboot.yaml
STATE_DIR=/var/lib/hiveboot
SERVICE_USER=hiveboot
DEFAULT_PREFIX=/opt/hiveboot
NEED_NODE=20
# sudo keeps the caller's PATH, which may lack the sbin directories (useradd, runuser).
PATH=$PATH:/usr/sbin:/sbin

usage() {
  cat <<'EOF'
Usage: scripts/install.sh [--start] [--prefix DIR] [--node PATH] [--with-ceph]
       scripts/install.sh --uninstall [--purge] [--prefix DIR]

Installs hiveboot from this (built) checkout as the systemd service hiveboot.service. Run as root.

  --start        start the service (or leave it running); without it, it is enabled but not started
  --prefix DIR   where the application goes (default /opt/hiveboot)
  --node PATH    the Node.js (>= 20) to run it with (default: node on PATH)
  --with-ceph    also install librbd1 (done anyway when /etc/hiveboot/hiveboot.yaml names Ceph)
  --uninstall    stop and remove the service and the application; keeps /etc/hiveboot,
                 /var/lib/hiveboot and the hiveboot user
  --purge        with --uninstall: remove those too (the inventory, its CHAP secrets, the API token)
  -h, --help     this text
EOF
}

say() { echo "install: $*"; }
# The arguments as one comma-separated list.
list() { local joined; joined=$(IFS=,; echo "$*"); echo "${joined//,/, }"; }
fail() { echo "install: $*" >&2; exit 1; }

# An option's value must follow it.
value() { if [ $# -lt 2 ] || [ -z "$2" ]; then echo "install: $1 needs a value (see --help)" >&2; exit 2; fi; }
mode=install purge=0 start=0 with_ceph=0 prefix='' node=''
while [ $# -gt 0 ]; do
  case "$1" in
    --start) start=1; shift ;;
    --prefix) value "$@"; prefix=$2; shift 2 ;;
    --node) value "$@"; node=$2; shift 2 ;;
    --with-ceph) with_ceph=1; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$purge" -eq 0 ] || [ "$mode" = uninstall ] || { echo "install: --purge goes with --uninstall" >&2; exit 2; }
if [ "$mode" = uninstall ] && { [ "$start" -eq 1 ] || [ "$with_ceph" -eq 1 ] || [ -n "$node" ]; }; then
  echo "install: --start, --node and --with-ceph are for installing, not --uninstall" >&2; exit 2
fi
if [ -n "$prefix" ]; then
  # It goes into the unit and into rm -rf on --uninstall: a plain absolute path, not a system directory.
  [[ "$prefix" =~ ^/[A-Za-z0-9._/+-]+$ ]] || fail "--prefix must be an absolute path of letters, digits and ._/+-"
  prefix=${prefix%/}
  case "$prefix" in / | /usr | /usr/* | /etc | /etc/* | /var | /var/lib | /bin | /sbin | /lib* | /boot* | /home* | /root* | /opt | /srv | /tmp*) fail "--prefix $prefix: choose a directory of its own, e.g. /opt/hiveboot" ;; esac
fi

[ "$(id -u)" -eq 0 ] || fail "run as root (it installs packages, a system user and a systemd unit)"
[ -d /run/systemd/system ] || fail "systemd is not running on this machine (PID 1 is $(cat /proc/1/comm)): nothing would run the service"

# The PREFIX the installed unit runs hiveboot from.
unit_prefix() { sed -n 's|^ExecStart=[^ ]* \(/.*\)/bin/hiveboot\.js serve$|\1|p' "$UNIT"; }
# A hiveboot application directory (the only kind --uninstall removes or an install replaces).
is_app_dir() { [ -f "$1/bin/hiveboot.js" ] && grep -q '"name": "hiveboot"' "$1/package.json" 2>/dev/null; }

# ------------------------------------------------------------------------------------ uninstall
if [ "$mode" = uninstall ]; then
  removed=()
  installed_prefix=''
  if [ -f "$UNIT" ]; then
    installed_prefix=$(unit_prefix)
    systemctl disable --now --quiet hiveboot.service || fail "could not stop hiveboot.service (systemctl status hiveboot)"
    rm -f "$UNIT"
    [ "$purge" -eq 0 ] || rm -rf "$UNIT.d"
    systemctl daemon-reload
    systemctl reset-failed hiveboot.service 2>/dev/null || true
    removed+=("$UNIT")
  fi
  prefix=${prefix:-${installed_prefix:-$DEFAULT_PREFIX}}
  if [ -e "$prefix" ]; then
    is_app_dir "$prefix" || fail "$prefix is not a hiveboot application directory: not removing it"
    rm -rf "$prefix"
    removed+=("$prefix")
  fi
  if [ "$purge" -eq 1 ]; then
    [ ! -e "$STATE_DIR" ] || { rm -rf "$STATE_DIR"; removed+=("$STATE_DIR"); }
    [ ! -e "$CONF" ] || { rm -f "$CONF"; removed+=("$CONF"); }
    if [ -d "$CONF_DIR" ] && ! rmdir "$CONF_DIR" 2>/dev/null; then
      say "kept $CONF_DIR: it holds files install.sh did not put there ($(find "$CONF_DIR" -mindepth 1 -maxdepth 1 -printf '%f\n' | paste -sd' '))"
    fi
    if getent passwd "$SERVICE_USER" >/dev/null; then userdel "$SERVICE_USER"; removed+=("user $SERVICE_USER"); fi
    if getent group "$SERVICE_USER" >/dev/null; then groupdel "$SERVICE_USER"; fi
  fi
  if [ ${#removed[@]} -eq 0 ]; then say "nothing to remove: hiveboot is not installed"; else say "removed $(list "${removed[@]}")"; fi
  if [ "$purge" -eq 0 ]; then
    kept=()
    for path in "$CONF_DIR" "$STATE_DIR"; do [ ! -e "$path" ] || kept+=("$path"); done
    getent passwd "$SERVICE_USER" >/dev/null && kept+=("the $SERVICE_USER user")
    [ ${#kept[@]} -eq 0 ] || say "kept $(list "${kept[@]}") (the inventory, CHAP secrets, API token): --uninstall --purge removes them too"
  fi
  exit 0
fi

# ------------------------------------------------------------------------------------ checks
prefix=${prefix:-$DEFAULT_PREFIX}
[ -r /etc/os-release ] || fail "no /etc/os-release: only Debian 12/13 and Ubuntu are supported"
. /etc/os-release
case "${ID:-}" in
  debian)
    case "${VERSION_ID:-}" in
      12 | 13) ;;
      '') say "Debian ${VERSION_CODENAME:-testing}: not a release this was tested on; continuing" ;;
      *) fail "Debian ${VERSION_ID}: only Debian 12 and 13 are supported" ;;
    esac ;;
  ubuntu) dpkg --compare-versions "${VERSION_ID:-0}" ge 22.04 || fail "Ubuntu ${VERSION_ID:-?}: 22.04 or later is needed (its systemd)" ;;
  *) fail "${PRETTY_NAME:-this system}: only Debian 12/13 and Ubuntu are supported" ;;
esac

for f in package.json package-lock.json bin/hiveboot.js dist/cli/main.js boot-templates node_modules; do
  [ -e "$REPO/$f" ] || fail "$REPO/$f is missing: build this checkout first (scripts/install-deps.sh, or npm ci)"
done
if [ -d "$REPO/src" ] && [ -n "$(find "$REPO/src" -name '*.ts' -newer "$REPO/dist/cli/main.js" -print -quit)" ]; then
  say "warning: src/ has changes newer than dist/ (npm run build compiles them); installing dist/ as it is"
fi

# shellcheck source-path=SCRIPTDIR source=lib/apt.sh
. "$REPO/scripts/lib/apt.sh"

# Node.js: the one asked for, the one on PATH, or the distribution's when that is new enough.
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -z "$node" ]; then node=$(command -v node || true); fi
if [ -z "$node" ]; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: //p')
  candidate=${candidate#*:}
  [[ "$candidate" =~ ^[0-9] ]] || candidate=''
  if [ -n "$candidate" ] && [ "${candidate%%.*}" -ge "$NEED_NODE" ]; then
    ensure_debian_packages install nodejs
    node=/usr/bin/node
  else
    fail "Node.js >= $NEED_NODE is needed and there is none on PATH; this distribution's nodejs is ${candidate:-not available} ($PRETTY_NAME). Install Node.js $NEED_NODE+ (nodejs.org's tarball under /usr/local, or NodeSource's package), build this checkout with it (npm ci), and run this again (or give --node PATH)."
  fi
fi
[ -x "$node" ] || fail "--node $node: not an executable"
case "$node" in /*) ;; *) node=$(command -v "$node") ;; esac
[[ "$node" =~ ^/[A-Za-z0-9._/+-]+$ ]] || fail "$node: the path of node must be plain (it goes into ExecStart)"
case "$(readlink -f "$node")" in /home/* | /root/*) fail "$node is under /home or /root, which the service cannot see (ProtectHome=): install Node.js system-wide" ;; esac
[ "$(node_major "$node")" -ge "$NEED_NODE" ] || fail "$node is Node.js $("$node" --version 2>/dev/null || echo '?'); hiveboot needs >= $NEED_NODE"

# ------------------------------------------------------------------------------------ install
changed=()

# Ceph: hiveboot's RBD backend and provisioners load librbd at run time.
config_names_ceph() {
  [ -f "$CONF" ] && grep -v '^[[:space:]]*#' "$CONF" | grep -Eiq '(^|[[:space:]])(ceph|rbd)[[:space:]]*:|:[[:space:]]*(ceph|rbd)([[:space:]]|$)'
}
packages=(ipxe)
if [ "$with_ceph" -eq 1 ] || config_names_ceph; then packages+=(librbd1); fi
ensure_debian_packages install "${packages[@]}"

if ! getent passwd "$SERVICE_USER" >/dev/null; then
  group_opt=(--user-group)
  if getent group "$SERVICE_USER" >/dev/null; then group_opt=(--gid "$SERVICE_USER"); fi
  useradd --system "${group_opt[@]}" --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment 'hiveboot network-boot server' "$SERVICE_USER"
  changed+=("user $SERVICE_USER")
fi

# The application: staged beside PREFIX, compared with what is there, swapped in only if different.
parent=$(dirname "$prefix")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.hiveboot-install.XXXXXX")
unit_dir=''
cleanup() {
  # Interrupted between the two renames below: the previous application goes back.
  if [ -e "$stage.old" ] && [ ! -e "$prefix" ]; then mv "$stage.old" "$prefix"; fi
  rm -rf "$stage" "$stage.old" ${unit_dir:+"$unit_dir"}
}
trap cleanup EXIT
cp -a "$REPO/package.json" "$REPO/package-lock.json" "$REPO/bin" "$REPO/dist" "$REPO/boot-templates" "$stage/"
mkdir -p "$stage/netboot"
[ ! -d "$REPO/netboot" ] || cp -a "$REPO/netboot/." "$stage/netboot/"
# The production packages: every lock file entry not marked dev, outermost first (a package's own
# node_modules/ comes with it). Optional ones absent here (other platforms' builds) are skipped.
deps=$("$node" - "$REPO" <<'EOF'
const fs = require('node:fs');
const root = process.argv[2];
const lock = JSON.parse(fs.readFileSync(`${root}/package-lock.json`, 'utf8'));
const prod = Object.entries(lock.packages ?? {}).filter(([p, v]) => p.startsWith('node_modules/') && !v.dev && !v.link);
const paths = prod.map(([p]) => p);
let missing = 0;
for (const [p, v] of prod) {
  if (paths.some((q) => q !== p && p.startsWith(`${q}/`))) continue;
  if (fs.existsSync(`${root}/${p}/package.json`)) console.log(p);
  else if (!v.optional) { console.error(`${p} is missing: run npm ci in ${root}`); missing++; }
}
process.exitCode = missing ? 1 : 0;
EOF
) || fail "node_modules/ does not match package-lock.json"
while IFS= read -r dep; do
  mkdir -p "$stage/$(dirname "$dep")"
  cp -a "$REPO/$dep" "$stage/$dep"
done <<<"$deps"
# The boot files from the ipxe package (a custom build already in netboot/ is kept).
netboot_log=$(bash "$REPO/scripts/netboot.sh" "$stage/netboot" 2>&1) || { echo "$netboot_log" >&2; fail "scripts/netboot.sh failed"; }
chown -R root:root "$stage"
chmod -R u+rwX,go+rX,go-w "$stage"
# It must run as the service will: as hiveboot, with this node (native modules built for its ABI).
if ! out=$(cd "$stage" && runuser -u "$SERVICE_USER" -- "$node" -e "require('better-sqlite3')(':memory:').prepare('select 1').get(); require('koffi').load('libc.so.6');" 2>&1); then
  echo "$out" | grep -v '^\s*at ' | head -n 8 >&2
  fail "node_modules/ does not load with $node ($("$node" --version)): rebuild this checkout with that node (npm ci) and run this again"
fi
if ! out=$(cd / && runuser -u "$SERVICE_USER" -- "$node" "$stage/bin/hiveboot.js" --help 2>&1); then
  echo "$out" | head -n 8 >&2
  fail "bin/hiveboot.js does not start with $node"
fi
app_changed=0
if [ -d "$prefix" ] && diff -rq --no-dereference "$stage" "$prefix" >/dev/null 2>&1; then
  rm -rf "$stage"
else
  if [ -e "$prefix" ]; then
    is_app_dir "$prefix" || fail "$prefix exists and is not a hiveboot application directory: not replacing it"
    mv "$prefix" "$stage.old"
  fi
  mv "$stage" "$prefix"
  rm -rf "$stage.old"
  changed+=("$prefix")
  app_changed=1
fi

if [ ! -e "$CONF" ]; then
  install -d -m 0755 "$CONF_DIR"
  install -m 0640 -o root -g "$SERVICE_USER" "$HERE/hiveboot.sample.yaml" "$CONF"
  changed+=("$CONF")
fi

if [ ! -d "$STATE_DIR" ]; then
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
  changed+=("$STATE_DIR")
elif [ "$(stat -c '%a %U:%G' "$STATE_DIR")" != "700 $SERVICE_USER:$SERVICE_USER" ]; then
  chown "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
  chmod 0700 "$STATE_DIR"
  changed+=("$STATE_DIR (owner, mode)")
fi

# The unit, with this node and PREFIX in ExecStart; checked by systemd before it is put in place.
unit_dir=$(mktemp -d)
previous_prefix=''
[ ! -f "$UNIT" ] || previous_prefix=$(unit_prefix)
sed -e "s|^ExecStart=/usr/bin/node $DEFAULT_PREFIX/|ExecStart=$node $prefix/|" -e "s|$DEFAULT_PREFIX|$prefix|g" \
  "$HERE/hiveboot.service" >"$unit_dir/hiveboot.service"
grep -qx "ExecStart=$node $prefix/bin/hiveboot.js serve" "$unit_dir/hiveboot.service" || fail "scripts/hiveboot.service: unexpected ExecStart"
if command -v systemd-analyze >/dev/null; then
  # It exits 0 on some findings (an unknown key): any output is a problem too.
  if ! verify=$(systemd-analyze verify "$unit_dir/hiveboot.service" 2>&1) || [ -n "$verify" ]; then
    echo "$verify" >&2
    fail "systemd-analyze verify found problems in the unit"
  fi
fi
unit_changed=0
if ! cmp -s "$unit_dir/hiveboot.service" "$UNIT"; then
  install -m 0644 "$unit_dir/hiveboot.service" "$UNIT"
  systemctl daemon-reload
  changed+=("$UNIT")
  unit_changed=1
fi
if [ -n "$previous_prefix" ] && [ "$previous_prefix" != "$prefix" ] && is_app_dir "$previous_prefix"; then
  say "the service now runs from $prefix; the previous application in $previous_prefix is left as it was (rm -rf it when done)"
fi
if ! systemctl is-enabled --quiet hiveboot.service; then
  systemctl enable --quiet hiveboot.service
  changed+=("enabled")
fi

show_failure() {
  systemctl status --no-pager --lines=0 hiveboot.service >&2 || true
  journalctl -u hiveboot.service -n 20 --no-pager -o cat >&2 || true
  fail "hiveboot.service did not start (above: its status and last log lines)"
}
if systemctl is-active --quiet hiveboot.service; then
  if [ "$app_changed" -eq 1 ] || [ "$unit_changed" -eq 1 ]; then
    say "restarting hiveboot.service (it was running the previous version)"
    systemctl restart hiveboot.service || show_failure
    changed+=("restarted")
  fi
elif [ "$start" -eq 1 ]; then
  say "starting hiveboot.service (returns once it reports READY=1)"
  systemctl start hiveboot.service || show_failure
  changed+=("started")
fi

if [ ${#changed[@]} -eq 0 ]; then
  say "nothing to do: hiveboot is installed and up to date"
else
  say "done: $(list "${changed[@]}")"
fi
if systemctl is-active --quiet hiveboot.service; then
  say "hiveboot.service is running (PID $(systemctl show -p MainPID --value hiveboot.service)); logs: journalctl -u hiveboot"
else
  say "hiveboot.service is enabled, not running: systemctl start hiveboot (or run this again with --start)"
fi
say "config $CONF, state $STATE_DIR (the API token is $STATE_DIR/api-token unless the config names one)"
