#!/usr/bin/env bash
# Set up and run the daemon on the embedded default config
# (config/concentrador.toml), creating the development PKI on first run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-env.sh run
if [ ! -f config/certs/ca.pem ]; then
  .venv/bin/concentrador certs init config/certs
fi
exec .venv/bin/concentrador --config config/concentrador.toml serve "$@"
