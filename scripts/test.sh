#!/usr/bin/env bash
# The whole suite on SQLite, then again on PostgreSQL when HUBGATE_TEST_DATABASE_URL is set.
# With arguments, pytest runs just those, once per database.
set -euo pipefail
cd "$(dirname "$0")/.."
pytest=(.venv/bin/pytest -p no:cacheprovider)

echo "== test suite on SQLite"
if [ $# -gt 0 ]; then
  env -u HUBGATE_TEST_DATABASE_URL "${pytest[@]}" "$@"
else
  # Each of these tests copies its own SQLite file, so two processes share the work;
  # the end-to-end and browser tests drive servers and a browser on free ports and
  # files of their own, so two processes share them too, a module at a time each.
  env -u HUBGATE_TEST_DATABASE_URL "${pytest[@]}" -n 2 --ignore=tests/e2e --ignore=tests/browser tests
  env -u HUBGATE_TEST_DATABASE_URL "${pytest[@]}" -n 2 --dist loadfile tests/e2e tests/browser
fi

if [ -n "${HUBGATE_TEST_DATABASE_URL:-}" ]; then
  echo "== test suite on PostgreSQL (${HUBGATE_TEST_DATABASE_URL%%@*}@...)"
  if [ $# -gt 0 ]; then
    "${pytest[@]}" "$@"
  else
    # Each process empties a database of its own before each test (tests/conftest.py
    # gives xdist worker gwN the database <name>_gwN), the end-to-end and browser
    # modules too. Only the tests that use a database run again: the rest (parsers,
    # protocol checks, the pure access rules) did not touch SQLite on the first pass
    # and would not touch PostgreSQL on this one.
    export HUBGATE_TEST_DATABASE_ONLY=1
    "${pytest[@]}" -n 2 --ignore=tests/e2e --ignore=tests/browser tests
    "${pytest[@]}" -n 2 --dist loadfile tests/e2e tests/browser
  fi
fi
