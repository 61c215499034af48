#!/usr/bin/env bash
# Installs what the benchmarks need (they are not part of the test suite):
#   - wrk, the HTTP load generator (Debian package), when missing and we are root;
#   - npm oidc-provider, the introspection baseline, from bench/introspect/package-lock.json (npm ci);
#   - py-spy, the sampling profiler, into ./.venv.
# Expects ./.venv from scripts/setup.sh. bench/introspect/run.py and bench/login-mix/run.py run it
# first when something is missing. Usage: bench/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  echo "bench/setup.sh: .venv not found; run scripts/setup.sh test first" >&2
  exit 1
fi

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk >/dev/null
  else
    echo "bench/setup.sh: wrk not found; install it (Debian: apt-get install wrk)" >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq nodejs npm >/dev/null
  else
    echo "bench/setup.sh: node/npm not found; install them (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
if [ ! -d bench/introspect/node_modules/oidc-provider ]; then
  (cd bench/introspect && npm ci --silent --no-audit --no-fund)
fi

if [ ! -x .venv/bin/py-spy ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check py-spy
fi
