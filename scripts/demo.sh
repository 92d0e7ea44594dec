#!/usr/bin/env bash
# The main job: starts moto (a local AWS Secrets Manager emulator) on
# loopback, then runs the demo, which prints a timeline of a cold read,
# cache hits, a rotation and an outage. Stops moto when done.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

export KEYSTEAD_DEMO_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
cargo run --quiet -p keystead-examples --bin demo
