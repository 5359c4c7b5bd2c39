#!/usr/bin/env bash
# The whole suite on SQLite, then again on PostgreSQL when HUBGATE_TEST_DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/pytest -p no:cacheprovider "$@")

echo "== test suite on SQLite"
env -u HUBGATE_TEST_DATABASE_URL "${pytest[@]}"

if [ -n "${HUBGATE_TEST_DATABASE_URL:-}" ]; then
  echo "== test suite on PostgreSQL (${HUBGATE_TEST_DATABASE_URL%%@*}@...)"
  "${pytest[@]}"
fi
