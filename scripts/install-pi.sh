#!/usr/bin/env bash
# Installs (or upgrades) rpm-gateway on a Raspberry Pi OS Bookworm / Debian 12 host from its release tarball
# (`npm pack` in a checkout). See docs/raspberry-pi.md. Safe to run again: it replaces the program in --prefix,
# and never overwrites the configuration, the store key or the store.
#
#   sudo ./install-pi.sh --tarball rpm-gateway-0.1.0.tgz
#
# It downloads nothing itself but the npm packages the release pins (npm-shrinkwrap.json) and, if make, g++
# or python3 are missing, Debian's build-essential and python3: the native modules compile at install.
# Node.js 20.19 or later must be installed first (Bookworm's apt has Node 18; docs/raspberry-pi.md says where
# to get 20).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install-pi.sh [--tarball PATH] [--prefix DIR] [--package-only] [--dry-run]

Installs rpm-gateway from its release tarball (made by `npm pack`):
  - the program in DIR (default /opt/rpm-gateway), its dependencies as pinned by the release, native modules
    compiled here; `rpm-gateway` on PATH (/usr/local/bin)
  - the system user rpm-gateway (no login shell, no home), /etc/rpm-gateway (0750) with gateway.yaml from the
    example if there is none, /var/lib/rpm-gateway (0700)
  - the store key as a systemd encrypted credential (TPM2 when present, else the host key), once
  - the D-Bus policy for BlueZ and the systemd unit; it does not enable or start the service

Options:
  --tarball PATH   the release tarball (default: the one rpm-gateway-*.tgz in the current directory)
  --prefix DIR     where the program goes (default /opt/rpm-gateway)
  --package-only   install the program into DIR and stop (no user, key, unit; root not needed)
  --dry-run        print every command that would change the system instead of running it
  -h, --help       this text

Environment: DESTDIR, if set, is put in front of every system path (staged installs and tests).
EOF
}

die() {
  printf 'install-pi: %s\n' "$*" >&2
  exit 1
}

note() {
  printf '%s\n' "$*"
}

TARBALL=''
PREFIX='/opt/rpm-gateway'
DRY_RUN=0
PACKAGE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) [ $# -ge 2 ] || die '--tarball needs a path'; TARBALL="$2"; shift 2 ;;
    --tarball=*) TARBALL="${1#*=}"; shift ;;
    --prefix) [ $# -ge 2 ] || die '--prefix needs a directory'; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --package-only) PACKAGE_ONLY=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

DESTDIR="${DESTDIR:-}"
SERVICE_USER='rpm-gateway'
DEFAULT_PREFIX='/opt/rpm-gateway'
ETC_DIR="$DESTDIR/etc/rpm-gateway"
STATE_DIR="$DESTDIR/var/lib/rpm-gateway"
BIN_LINK="$DESTDIR/usr/local/bin/rpm-gateway"
# systemd.unit(5): /usr/local/lib/systemd/system holds "system units installed by the administrator";
# /etc/systemd/system stays free for the administrator's own overrides (`systemctl edit rpm-gateway`).
UNIT_FILE="$DESTDIR/usr/local/lib/systemd/system/rpm-gateway.service"
DBUS_POLICY="$DESTDIR/etc/dbus-1/system.d/rpm-gateway-bluetooth.conf"

# Every command that changes the system goes through run: printed, shell-quoted, under --dry-run.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# A pipeline or redirection, given as one shell string (printed as is under --dry-run).
run_sh() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '+ %s\n' "$1"
  else
    bash -c "$1"
  fi
}

# version_ge A B: is version A (1.2.3) at least B (1.2 or 1.2.3)?
version_ge() {
  local -a a b
  IFS=. read -r -a a <<<"$1"
  IFS=. read -r -a b <<<"$2"
  local i x y
  for i in 0 1 2; do
    x="${a[$i]:-0}"
    y="${b[$i]:-0}"
    x="${x%%[!0-9]*}"
    y="${y%%[!0-9]*}"
    if ((10#${x:-0} > 10#${y:-0})); then return 0; fi
    if ((10#${x:-0} < 10#${y:-0})); then return 1; fi
  done
  return 0
}

# ---- the release tarball ------------------------------------------------------------------------------------
if [ -z "$TARBALL" ]; then
  shopt -s nullglob
  found=(rpm-gateway-*.tgz)
  shopt -u nullglob
  [ ${#found[@]} -eq 1 ] || die "give the release tarball with --tarball PATH (found ${#found[@]} rpm-gateway-*.tgz here)"
  TARBALL="${found[0]}"
fi
[ -f "$TARBALL" ] || die "no such tarball: $TARBALL"
TARBALL="$(cd "$(dirname "$TARBALL")" && pwd)/$(basename "$TARBALL")"
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path: $PREFIX" ;; esac
PREFIX="${PREFIX%/}"
if [ -z "$PREFIX" ]; then die '--prefix must not be /'; fi

# Read a file of the package without unpacking it anywhere (npm pack puts everything under package/).
from_package() {
  tar -xzOf "$TARBALL" "package/$1" 2>/dev/null || die "$TARBALL has no $1: is it an rpm-gateway release made by npm pack?"
}
PACKAGE_JSON="$(from_package package.json)"
from_package npm-shrinkwrap.json >/dev/null
pkg_field() {
  node -e 'const p = JSON.parse(process.argv[1]); const v = process.argv[2].split(".").reduce((o, k) => (o == null ? o : o[k]), p); process.stdout.write(v == null ? "" : typeof v === "string" ? v : JSON.stringify(v));' "$PACKAGE_JSON" "$1"
}

# ---- Node.js and npm ----------------------------------------------------------------------------------------
command -v node >/dev/null || die 'node is not installed: install Node.js 20 first (docs/raspberry-pi.md, "Node.js 20")'
command -v npm >/dev/null || die 'npm is not installed: it comes with Node.js 20 (docs/raspberry-pi.md, "Node.js 20")'
[ "$(pkg_field name)" = rpm-gateway ] || die "$TARBALL is not an rpm-gateway release"
VERSION="$(pkg_field version)"
ENGINES="$(pkg_field engines.node)"
NEED="${ENGINES#>=}"
[ "$NEED" != "$ENGINES" ] || die "cannot read the Node.js version the release needs (engines.node: $ENGINES)"
# check_node BINARY WHAT: the Node.js at BINARY is recent enough, or stop saying where to get one.
check_node() {
  local have
  have="$("$1" -p 'process.versions.node' 2>/dev/null)" || die "cannot run $1"
  version_ge "$have" "$NEED" ||
    die "$2 is Node.js $have; rpm-gateway $VERSION needs $NEED or later. Bookworm's apt has Node.js 18: install 20 from NodeSource or nodejs.org first (docs/raspberry-pi.md, \"Node.js 20\")."
}
check_node "$(command -v node)" "node on PATH ($(command -v node))"

# ---- build tools for the native modules ---------------------------------------------------------------------
# better-sqlite3-multiple-ciphers (the encrypted store), unix-dgram (sd_notify) and the optional noble HCI socket
# compile from source with node-gyp: python3, make and a C++ compiler.
missing=()
command -v make >/dev/null || missing+=(build-essential)
command -v g++ >/dev/null || { [ ${#missing[@]} -gt 0 ] || missing+=(build-essential); }
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$PACKAGE_ONLY" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
    die "the native modules need ${missing[*]}: sudo apt-get install -y ${missing[*]}"
  fi
  note "installing the build tools the native modules need: ${missing[*]}"
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

if [ "$PACKAGE_ONLY" -eq 0 ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  die 'run as root (sudo), or with --package-only to install only the program into a directory of yours'
fi

# ---- what the unit expects ----------------------------------------------------------------------------------
UNIT_TEXT="$(from_package config/systemd/rpm-gateway.service)"
if [ "$PACKAGE_ONLY" -eq 0 ]; then
  # The interpreter systemd starts: the first word of ExecStart= (after systemd's prefixes such as - or @).
  exec_start="$(sed -n 's/^ExecStart=//p' <<<"$UNIT_TEXT" | head -n 1)"
  exec_bin="${exec_start%% *}"
  exec_bin="${exec_bin##[-@:+!]}"
  exec_bin="${exec_bin##[-@:+!]}"
  if [ "$(basename "$exec_bin")" = node ] && [ "${exec_bin#/}" != "$exec_bin" ]; then
    [ -x "$exec_bin" ] ||
      die "the unit runs $exec_bin, which does not exist: install Node.js 20 from NodeSource (it puts node there), or link the node you installed: sudo ln -s $(command -v node) $exec_bin"
    check_node "$exec_bin" "$exec_bin (the service's node)"
  fi
  # LoadCredentialEncrypted=ID[:PATH] (systemd.exec(5)); a bare ID is looked up in /etc/credstore.encrypted/.
  cred_line="$(sed -n 's/^LoadCredentialEncrypted=//p' <<<"$UNIT_TEXT" | head -n 1)"
  [ -n "$cred_line" ] || die 'the unit in the release loads no encrypted credential for the store key'
  CRED_NAME="${cred_line%%:*}"
  if [ "$CRED_NAME" = "$cred_line" ]; then
    CRED_FILE="/etc/credstore.encrypted/$CRED_NAME"
  else
    CRED_FILE="${cred_line#*:}"
  fi
  CRED_FILE="$DESTDIR$CRED_FILE"
fi

# ---- the program --------------------------------------------------------------------------------------------
# Unpacked into a new directory beside PREFIX and swapped in whole, so a failed install leaves the old one.
# `npm ci` installs exactly the tree the release was tested with (its npm-shrinkwrap.json). The package's own
# lifecycle scripts must not run (its `prepare` builds the TypeScript, which a release already carries) and a
# dependency's install script runs only if the package's allowScripts allows it, so: --ignore-scripts, then
# `npm rebuild` of exactly those (npm applies the project's allowScripts there).
note "installing rpm-gateway $VERSION into $DESTDIR$PREFIX"
target="$DESTDIR$PREFIX"
staging="$(dirname "$target")/.$(basename "$target").new"
old="$(dirname "$target")/.$(basename "$target").old"
umask 022
run rm -rf "$staging" "$old"
run mkdir -p "$staging"
run tar -xzf "$TARBALL" -C "$staging" --strip-components=1 --no-same-owner
# node-gyp compiles against the headers of the running Node.js; NodeSource's and nodejs.org's Node.js ship them
# beside the binary (include/node), so nothing is downloaded for them.
node_root="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
npm_env=()
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_root/include/node/node.h" ]; then
  npm_env=(env "npm_config_nodedir=$node_root")
fi
run "${npm_env[@]}" npm ci --prefix "$staging" --omit=dev --ignore-scripts --no-audit --no-fund
# The dependencies whose install scripts the package allows (allowScripts: true) and the release installs
# (in its shrinkwrap, not dev-only); in a real run, only those npm installed here (optional ones are per OS).
# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
allowed="$(from_package npm-shrinkwrap.json | node -e '
  const allow = JSON.parse(process.argv[1]).allowScripts ?? {};
  const locked = JSON.parse(require("node:fs").readFileSync(0, "utf8")).packages ?? {};
  for (const [name, allowed] of Object.entries(allow)) {
    const entry = locked[`node_modules/${name}`];
    if (allowed === true && entry && !entry.dev) console.log(name);
  }' "$PACKAGE_JSON")"
natives=()
while IFS= read -r name; do
  [ -n "$name" ] || continue
  if [ "$DRY_RUN" -eq 1 ] || [ -f "$staging/node_modules/$name/package.json" ]; then natives+=("$name"); fi
done <<<"$allowed"
if [ ${#natives[@]} -gt 0 ]; then
  run "${npm_env[@]}" npm rebuild --prefix "$staging" --foreground-scripts "${natives[@]}"
fi
run chmod 0755 "$staging/dist/src/cli/bin.js"
if [ -e "$target" ]; then run mv -T "$target" "$old"; fi
run mv -T "$staging" "$target"
run rm -rf "$old"

if [ "$PACKAGE_ONLY" -eq 1 ]; then
  note "installed: $target/dist/src/cli/bin.js"
  exit 0
fi

run mkdir -p "$(dirname "$BIN_LINK")"
run ln -sfn "$PREFIX/dist/src/cli/bin.js" "$BIN_LINK"

# ---- the service user and its directories -------------------------------------------------------------------
# A system user with no login shell and no home (Debian Policy 9.2.1: /nonexistent for users without one).
# Not in the bluetooth group: Debian's BlueZ grants that group every org.bluez call; the hub gets only the
# calls it makes, from config/dbus/rpm-gateway-bluetooth.conf below.
if getent passwd "$SERVICE_USER" >/dev/null; then
  note "user $SERVICE_USER exists"
else
  run useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --comment 'rpm-gateway hub' "$SERVICE_USER"
fi
run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC_DIR"
# systemd's StateDirectory= makes it at each start too (same owner and mode); made here so `rpm-gateway init`
# and `certs csr` can write there before the first start.
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
if [ -e "$ETC_DIR/gateway.yaml" ]; then
  note "$ETC_DIR/gateway.yaml exists: kept"
else
  run install -m 0640 -o root -g "$SERVICE_USER" "$target/config/gateway.example.yaml" "$ETC_DIR/gateway.yaml"
fi

# ---- the store key, sealed by systemd-creds -----------------------------------------------------------------
# systemd-creds(1), --with-key=auto: the TPM2 when there is one (and not in a container) together with the host
# key (/var/lib/systemd/credential.secret, made on first use); on a Pi, which has no TPM2, the host key alone,
# which lives on the same SD card (docs/store.md says what that protects against). The key is 256 random bits
# as 64 hex digits; it exists in plain text only in the pipe. --name embeds the credential's ID, which systemd
# checks when the unit loads it.
if [ -e "$CRED_FILE" ]; then
  note "store key $CRED_FILE exists: kept"
else
  if [ -e "$STATE_DIR/outbox.db" ]; then
    die "$STATE_DIR/outbox.db exists but its key $CRED_FILE does not: a new key cannot open that store. Restore the key (docs/raspberry-pi.md, \"The store key\") or move the store away, then run this again."
  fi
  command -v systemd-creds >/dev/null || die 'systemd-creds is missing (systemd 250 or later is needed)'
  if systemd-creds has-tpm2 --quiet 2>/dev/null; then
    note 'sealing the store key with the TPM2 and the host key'
  else
    note 'no TPM2: sealing the store key with the host key (/var/lib/systemd/credential.secret)'
  fi
  run install -d -m 0700 "$(dirname "$CRED_FILE")"
  tmp_cred="$CRED_FILE.tmp"
  run rm -f "$tmp_cred"
  run_sh "umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \\n' | systemd-creds encrypt --with-key=auto --name=$(printf %q "$CRED_NAME") - $(printf %q "$tmp_cred")"
  # link(2) fails if the name exists: two runs at once cannot both write a key.
  run ln "$tmp_cred" "$CRED_FILE"
  run rm -f "$tmp_cred"
fi

# ---- D-Bus policy and the unit ------------------------------------------------------------------------------
# install_if_changed SRC DEST: copy (mode 0644) unless DEST already has the same bytes; says whether it copied.
install_if_changed() {
  if [ "$DRY_RUN" -eq 0 ] && cmp -s "$1" "$2"; then
    return 1
  fi
  run install -D -m 0644 "$1" "$2"
}
if install_if_changed "$target/config/dbus/rpm-gateway-bluetooth.conf" "$DBUS_POLICY"; then
  run systemctl reload dbus
fi

unit_source="$target/config/systemd/rpm-gateway.service"
if [ "$PREFIX" != "$DEFAULT_PREFIX" ]; then
  # The unit names the program's path; point it at this prefix.
  unit_source="$target/config/systemd/rpm-gateway.service.local"
  run_sh "sed 's#$DEFAULT_PREFIX/#$PREFIX/#g' $(printf %q "$target/config/systemd/rpm-gateway.service") > $(printf %q "$unit_source")"
fi
install_if_changed "$unit_source" "$UNIT_FILE" || true
if [ -e "$DESTDIR/etc/systemd/system/rpm-gateway.service" ]; then
  note "warning: $DESTDIR/etc/systemd/system/rpm-gateway.service (an older manual install) hides the unit installed in $UNIT_FILE: remove it, then run: sudo systemctl daemon-reload"
fi
run systemctl daemon-reload

cat <<EOF

rpm-gateway $VERSION is installed: $(basename "$BIN_LINK") -> $PREFIX/dist/src/cli/bin.js

Next steps (docs/raspberry-pi.md):
  1. Edit /etc/rpm-gateway/gateway.yaml: the gateway id and the clinic's brokers; rpm-gateway config check
  2. Certificates: sudo rpm-gateway certs csr --gateway-id <id>, have the clinic sign it, install it
  3. Create the store: sudo rpm-gateway init
  4. Start it: sudo systemctl enable --now rpm-gateway; journalctl -u rpm-gateway -f
  5. Enrol the patient's devices with the hub running: sudo rpm-gateway pair
If this was an upgrade of a running hub: sudo systemctl restart rpm-gateway
EOF
