#!/usr/bin/env bash
# Builds keystead-layer.zip: the keystead binary and the launcher that runs
# `keystead agent` as a Lambda external extension. Pass a keystead.toml to
# include it as /opt/keystead/keystead.toml.
#
#   bash examples/lambda-extension/build-layer.sh [keystead.toml]
#
# The binary is built for this machine's architecture and linked against
# its glibc. Build on Amazon Linux 2023, or in a container of it, for the
# provided.al2023 and recent managed runtimes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

cargo build --release -p keystead-cli --manifest-path "$root/Cargo.toml"

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/extensions" "$staging/keystead/bin"
cp "$root/target/release/keystead" "$staging/keystead/bin/keystead"
cp "$here/extensions/keystead" "$staging/extensions/keystead"
chmod 755 "$staging/extensions/keystead" "$staging/keystead/bin/keystead"
if [ "$#" -ge 1 ]; then
  cp "$1" "$staging/keystead/keystead.toml"
fi

rm -f "$root/keystead-layer.zip"
(cd "$staging" && zip -qr "$root/keystead-layer.zip" .)
echo "wrote $root/keystead-layer.zip"
