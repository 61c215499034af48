#!/usr/bin/env bash
# Creates ./.venv and installs mas-twisted into it (editable, so that twistd finds the
# plugin in twisted/plugins/ of this checkout), with the test dependencies when asked:
#   scripts/setup.sh          # runtime only
#   scripts/setup.sh test     # runtime + tests
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pg_config >/dev/null 2>&1; then
  # psycopg2 builds against libpq; Debian ships its headers in libpq-dev.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev >/dev/null
  else
    echo "setup: pg_config not found; install libpq-dev (Debian) or postgresql-devel first" >&2
    exit 1
  fi
fi

if [ "${1:-}" = "test" ] && [ ! -x /usr/bin/chromium ]; then
  # The browser test (tests/integration/test_browser.py) drives Debian's chromium through
  # Playwright; Playwright's own browser download is never used.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium not found; install Debian's chromium (apt-get install chromium)" \
      "or the browser test will fail" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
# editable_mode=compat puts this checkout on sys.path through a .pth file; the default
# editable mode uses an import finder that Twisted's plugin scan cannot see
# (shared/spec/feasibility.md §4).
.venv/bin/python -m pip install -q --disable-pip-version-check \
  -e ".${extras}" --config-settings editable_mode=compat
