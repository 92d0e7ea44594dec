#!/usr/bin/env bash
# Builds the Node binding (debug) and runs its tests: the TypeScript type
# tests against the checked-in declarations, then the node:test suite,
# which starts its own moto and OpenBao servers on loopback. Exits
# non-zero on any failure.
#
# Environment:
#   KEYSTEAD_TEST_SKIP_BACKENDS  comma-separated backends whose conformance
#                                cases to skip, for example "vault"
set -euo pipefail
cd "$(dirname "$0")/.."

# Idempotent: creates .venv with moto and OpenBao when they are missing,
# and returns quickly when they are there.
bash scripts/setup.sh

export AWS_EC2_METADATA_DISABLED=true

cd bindings-node
echo "test-node: installing npm packages"
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi

echo "test-node: building the native module (debug)"
npm run --silent build:debug

echo "test-node: checking types"
npm run --silent test:types

echo "test-node: running node --test"
npm run --silent test:node
