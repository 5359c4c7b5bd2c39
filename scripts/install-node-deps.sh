#!/usr/bin/env bash
# Installs the npm packages the OIDC end-to-end tests run (tests/e2e/oidc: the
# OpenID Provider oidc-provider, pinned with its lock file) with `npm ci`. Without
# node or npm it says so and exits 0: those tests are then skipped with a reason.
set -euo pipefail
cd "$(dirname "$0")/../tests/e2e/oidc"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-node-deps: node or npm not found; the OIDC provider end-to-end tests will be skipped" >&2
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "install-node-deps: installed tests/e2e/oidc/node_modules ($(node --version))"
