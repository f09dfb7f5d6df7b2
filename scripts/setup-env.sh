#!/usr/bin/env bash
# Shared by scripts/run-dev.sh, scripts/test.sh and .ci/run: make sure the
# system packages and the project virtualenv (.venv) exist. Idempotent and
# quick when everything is already there.
#   $1 = "run"  -> what the daemon needs (python3-venv)
#   $1 = "test" -> plus what the test suite needs (Java 17, Apache Axis 1.4,
#                  lbzip2, openssl, chromium for the console's browser test,
#                  postgresql and haproxy for tests/scaleout/, xmlsec1 for
#                  the IEC 62325-504 signature interop tests)
set -euo pipefail
mode="${1:-run}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

pkgs=(python3 python3-venv python3-pip)
if [ "$mode" = "test" ]; then
  pkgs+=(default-jdk-headless libaxis-java libactivation-java libmail-java lbzip2 openssl curl chromium postgresql haproxy)
  # xmlsec1: an independent XMLDSig implementation for the 504 signature interop tests.
  pkgs+=(xmlsec1)
  # The JAX-WS RI: our own Java 504 server (tests/interop/iec62325/) and REE's eemws client.
  pkgs+=(libjaxws-java libjaxws-api-java libjaxb-java libjaxb-api-java libgeronimo-ejb-3.2-spec-java)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# python3-venv is only needed when the interpreter lacks ensurepip.
if python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing=("${missing[@]/python3-venv/}"); missing=("${missing[@]/python3-pip/}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing system packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  python3 -m venv .venv
fi
extra=""
[ "$mode" = "test" ] && extra="[test]"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-${mode}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing concentrador${extra} into .venv" >&2
  log=".venv/setup-${mode}.log"
  if ! { .venv/bin/python -m pip install -q --upgrade pip \
         && .venv/bin/python -m pip install -q -e ".${extra}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed (log above, also in $log)" >&2
    exit 1
  fi
  rm -f .venv/.installed-*-"${mode}"
  touch "$stamp"
fi
