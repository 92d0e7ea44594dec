#!/usr/bin/env bash
# Tests the C interface and the Go binding. It builds the Rust static
# library (debug) and runs the C interface's Rust unit tests. It compiles
# the C example and the C tests against the static library and runs them.
# Then it runs go vet and go test -race; the Go tests start their own moto
# and OpenBao servers on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo go cc c++; do
  if ! command -v "$tool" >/dev/null; then
    echo "test-go: $tool is missing; the Go binding needs Rust (cargo), Go 1.24+ and C and C++ compilers" >&2
    exit 1
  fi
done
if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/bao ]; then
  bash scripts/setup.sh
fi
export CGO_ENABLED=1

echo "== test-go: building the Rust static library"
bash bindings-go/build.sh

echo "== test-go: Rust unit tests of the C interface"
cargo test -p keystead-capi

echo "== test-go: C example and C tests"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
link=(target/debug/libkeystead_capi.a -lpthread -ldl -lm -lrt -lutil -lgcc_s)
cc -std=c11 -Wall -Wextra -Werror -I bindings-go/include \
  bindings-go/examples/c/read_env.c "${link[@]}" -o "$scratch/read_env"
cc -std=c11 -Wall -Wextra -Werror -I bindings-go/include \
  bindings-go/examples/c/capi_test.c "${link[@]}" -o "$scratch/capi_test"
# The header must also compile as C++, which it promises.
c++ -fsyntax-only -Wall -Werror -x c++ bindings-go/include/keystead.h

output="$(KEYSTEAD_EXAMPLE_TOKEN=example-value "$scratch/read_env" env://KEYSTEAD_EXAMPLE_TOKEN)"
expected="env://KEYSTEAD_EXAMPLE_TOKEN (provider env): example-value"
if [ "$output" != "$expected" ]; then
  echo "test-go: read_env printed '$output', expected '$expected'" >&2
  exit 1
fi
status=0
env -u KEYSTEAD_EXAMPLE_TOKEN "$scratch/read_env" env://KEYSTEAD_EXAMPLE_TOKEN 2>"$scratch/missing.err" || status=$?
if [ "$status" != 2 ] || ! grep -q "not-found" "$scratch/missing.err"; then
  echo "test-go: read_env with the variable unset exited $status: $(cat "$scratch/missing.err")" >&2
  exit 1
fi
echo "read_env example: ok"
"$scratch/capi_test"

echo "== test-go: go vet and go test -race"
cd bindings-go
go vet ./...
# -v lists every test by name; the "=== RUN" lines only repeat them.
go test -race -count=1 -v ./... 2>&1 | grep -v -E '^=== (RUN|PAUSE|CONT)'
