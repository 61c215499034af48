#!/usr/bin/env bash
# Sets up ./.venv, writes ./config.yaml on first run (SQLite database ./mas.db, listening
# on http://localhost:8080/ and the health check on http://localhost:8081/health), then runs
# the service in the foreground. Extra arguments go to `twistd mas` (e.g. --no-sync).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ ! -f config.yaml ]; then
  .venv/bin/mas-cli config generate -o config.yaml
  echo "run: wrote config.yaml with fresh secrets" >&2
fi
exec .venv/bin/twistd --nodaemon --pidfile= mas -c config.yaml "$@"
