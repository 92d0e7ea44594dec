#!/usr/bin/env bash
# Builds the Python binding (debug) into .venv with `maturin develop` and
# runs its pytest suite, which starts its own moto and OpenBao servers on
# loopback. Exits non-zero on any failure, including a run that collects
# no tests (pytest's exit code 5).
#
# Environment:
#   KEYSTEAD_TEST_SKIP_BACKENDS  comma-separated backends whose conformance
#                                cases to skip, for example "vault"
#   PYTEST_ARGS                  extra pytest arguments, for example "-k fork"
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# Idempotent: creates .venv with maturin, pytest, moto and OpenBao when they
# are missing, and returns quickly when they are there.
bash scripts/setup.sh

export VIRTUAL_ENV="$ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"

echo "test-python: building keystead._native (debug) into $VIRTUAL_ENV"
(cd bindings-python && maturin develop --quiet)

echo "test-python: running pytest"
cd bindings-python
set +e
# shellcheck disable=SC2086
python -m pytest -p no:cacheprovider ${PYTEST_ARGS:-}
status=$?
set -e

if [ "$status" -eq 5 ]; then
  echo "test-python: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi
exit "$status"
