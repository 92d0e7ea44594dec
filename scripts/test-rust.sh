#!/usr/bin/env bash
# Runs the Rust workspace's tests: unit tests, the moto and OpenBao
# integration suites (each starts its own servers on loopback), the CLI
# tests, the conformance cases and the doc tests. Debug builds only.
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_EC2_METADATA_DISABLED=true
# Two test binaries at a time: the integration suites each start servers,
# and the machine this must fit has two cores.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"

cargo test --workspace --exclude keystead-python --exclude keystead-node --exclude keystead-benches --all-features --no-fail-fast
