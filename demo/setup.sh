#!/usr/bin/env bash
# The two-node demo: create the configs, spools and dev PKI of two
# concentrators on this machine, node A (0086) and node B (CREC).
#
#   bash demo/setup.sh [--dir DIR] [--port-a N] [--port-b N] [--admin-a N] [--admin-b N]
#                      [--collect CRON] [--force]
#
#   --dir DIR       where to put everything (default demo/run/, git-ignored)
#   --port-a N      A's TLS port on 127.0.0.1 (default 9086)
#   --port-b N      B's TLS port on 127.0.0.1 (default 9087)
#   --admin-a N     A's operator console on http://127.0.0.1:N/ (default 9180)
#   --admin-b N     B's operator console on http://127.0.0.1:N/ (default 9181)
#   --collect CRON  B's collection schedule, 5-field crontab (default "* * * * *")
#   --force         replace the dev PKI in DIR/certs/ too (configs are always rewritten)
#
# Layout:
#   DIR/certs/                   ONE development PKI for both nodes (never for production)
#   DIR/node-a/concentrador.toml node A, spool in DIR/node-a/spool/
#   DIR/node-b/concentrador.toml node B, spool in DIR/node-b/spool/
#
# Why one PKI: both nodes must trust the other's certificates. One dev CA
# (`concentrador certs init --node-id 0086 --peers CREC`) issues everything:
# A calls with client.pem (0086), B with CREC-client.pem, and both servers use
# the same `localhost` server certificate, so each node's `ca.pem` already
# trusts the other. With two separate PKIs you would instead concatenate both
# ca.pem files into each node's [server] client_ca and [client] ca.
#
# Re-running keeps the PKI and the spools (files in flight stay where they
# are) and rewrites both configs. Start over with `rm -rf DIR`.
# $PYTHON selects the interpreter (default .venv/bin/python, set up on demand).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

dir="$root/demo/run"
port_a=9086
port_b=9087
admin_a=9180
admin_b=9181
collect="* * * * *"
force=""

die() { echo "demo/setup.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || die "--dir needs a value"; dir="$2"; shift 2 ;;
    --port-a) [ $# -ge 2 ] || die "--port-a needs a value"; port_a="$2"; shift 2 ;;
    --port-b) [ $# -ge 2 ] || die "--port-b needs a value"; port_b="$2"; shift 2 ;;
    --admin-a) [ $# -ge 2 ] || die "--admin-a needs a value"; admin_a="$2"; shift 2 ;;
    --admin-b) [ $# -ge 2 ] || die "--admin-b needs a value"; admin_b="$2"; shift 2 ;;
    --collect) [ $# -ge 2 ] || die "--collect needs a value"; collect="$2"; shift 2 ;;
    --force) force="--force"; shift ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

for port in "$port_a" "$port_b" "$admin_a" "$admin_b"; do
  [[ "$port" =~ ^[0-9]{1,5}$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] ||
    die "'$port' is not a TCP port (1..65535)"
done
[ "$(printf '%s\n' "$port_a" "$port_b" "$admin_a" "$admin_b" | sort -u | wc -l)" -eq 4 ] ||
  die "the four ports (--port-a, --port-b, --admin-a, --admin-b) must differ"
# The value is pasted into the TOML and a sed replacement: crontab characters only.
[[ "$collect" =~ ^[0-9A-Za-z*/,\ -]+$ ]] || die "--collect '$collect' is not a crontab expression"

if [ -z "${PYTHON:-}" ]; then
  bash "$root/scripts/setup-env.sh" run
  PYTHON="$root/.venv/bin/python"
fi
concentrador() { "$PYTHON" -m concentrador "$@"; }

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

if [ -n "$force" ] || [ ! -f "$dir/certs/ca.pem" ]; then
  concentrador certs init "$dir/certs" --node-id 0086 --peers CREC $force >/dev/null
  echo "dev PKI (one CA for both nodes) written to $dir/certs/"
else
  echo "dev PKI kept: $dir/certs/ (--force replaces it)"
fi

render() {  # render TEMPLATE OUTPUT
  local tmp="$2.new"
  sed -e "s|@PORT_A@|$port_a|g" -e "s|@PORT_B@|$port_b|g" -e "s|@COLLECT@|$collect|g" \
    -e "s|@ADMIN_A@|$admin_a|g" -e "s|@ADMIN_B@|$admin_b|g" \
    "$root/demo/$1" >"$tmp"
  mv "$tmp" "$2"  # a daemon reloading (SIGHUP) never reads half a file
}

mkdir -p "$dir/node-a" "$dir/node-b"
render node-a.toml.in "$dir/node-a/concentrador.toml"
render node-b.toml.in "$dir/node-b/concentrador.toml"
# The daemons create their spools at start-up; creating the two outboxes now
# lets files be dropped before the first start.
mkdir -p "$dir/node-a/spool/CREC/outbox" "$dir/node-b/spool/0086/outbox"

for node in node-a node-b; do
  concentrador --config "$dir/$node/concentrador.toml" check-config >/dev/null ||
    die "$dir/$node/concentrador.toml does not validate (see above)"
done

cat <<EOF
node A (0086): $dir/node-a/concentrador.toml  https://localhost:$port_a/  publishes for CREC
node B (CREC): $dir/node-b/concentrador.toml  https://localhost:$port_b/  collects from 0086 ("$collect"), pushes to 0086
consoles:    A http://127.0.0.1:$admin_a/   B http://127.0.0.1:$admin_b/   (status, files, trails, /metrics)
start them:  .venv/bin/concentrador --config $dir/node-a/concentrador.toml serve
             .venv/bin/concentrador --config $dir/node-b/concentrador.toml serve
EOF
