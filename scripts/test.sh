#!/usr/bin/env bash
# Sets up ./.venv with the test dependencies and runs every test suite: the unit suites on
# SQLite and again on PostgreSQL, then the end-to-end suites (real twistd processes, both
# engines). PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth) and is
# started if it is down. Extra arguments go to every pytest run (e.g. -x, -k name).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test || exit 1

export MAS_TEST_POSTGRES_DSN=${MAS_TEST_POSTGRES_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "test: PostgreSQL is not reachable at 127.0.0.1:5432; the PostgreSQL suites will fail" >&2
fi

status=0
echo "== lint, format and types =="
.venv/bin/ruff check mas_twisted tests twisted bench || status=1
.venv/bin/ruff format --check -q mas_twisted tests twisted bench || status=1
.venv/bin/mypy || status=1
# The two unit suites share nothing (SQLite in memory; a PostgreSQL database per test) and
# each keeps one core busy: they run side by side, each printed whole once both are done.
logs=$(mktemp -d)
env -u MAS_TEST_POSTGRES_DSN .venv/bin/python -m pytest tests -q -p no:cacheprovider --ignore=tests/integration "$@" \
  > "$logs/sqlite" 2>&1 &
sqlite_pid=$!
.venv/bin/python -m pytest tests -q -p no:cacheprovider --ignore=tests/integration "$@" > "$logs/postgres" 2>&1 &
postgres_pid=$!
wait $sqlite_pid || status=1
wait $postgres_pid || status=1
echo "== unit suites on SQLite =="
cat "$logs/sqlite"
echo "== unit suites on PostgreSQL =="
cat "$logs/postgres"
rm -rf "$logs"
echo "== end-to-end suites =="
.venv/bin/python -m pytest tests/integration -q "$@" || status=1
exit $status
