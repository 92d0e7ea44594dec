#!/usr/bin/env bash
# Runs every test in every language. Each suite starts the local backends
# it needs (moto, OpenBao, PostgreSQL) on loopback and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

bash scripts/test-rust.sh
bash scripts/test-python.sh
bash scripts/test-node.sh
bash scripts/test-go.sh
