#!/usr/bin/env bash
# Load and cold-start benchmark of `keystead agent` beside the AWS Secrets
# Manager Agent, both serving one moto secret on loopback in the same run,
# plus the cold start of the Rust Lambda example. Release builds; prints
# Markdown tables on stdout and per-round figures on stderr.
#
# The AWS agent is installed from crates.io into .tools/aws-agent the first
# time (several minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

AWS_AGENT_VERSION=2.1.0
AWS_AGENT_ROOT=.tools/aws-agent
AWS_AGENT_BIN="$AWS_AGENT_ROOT/bin/aws_secretsmanager_agent"
if [ ! -x "$AWS_AGENT_BIN" ]; then
  echo "bench: installing aws_secretsmanager_agent $AWS_AGENT_VERSION into $AWS_AGENT_ROOT" >&2
  cargo install aws_secretsmanager_agent --version "$AWS_AGENT_VERSION" --root "$AWS_AGENT_ROOT"
fi

cargo build --release -p keystead-example-rust-lambda

export AWS_EC2_METADATA_DISABLED=true
AWS_SM_AGENT_BIN="$PWD/$AWS_AGENT_BIN" \
KEYSTEAD_LAMBDA_BOOTSTRAP="$PWD/target/release/bootstrap" \
  cargo bench -p keystead-cli --bench agent_load
