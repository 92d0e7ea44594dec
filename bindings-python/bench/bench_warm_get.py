"""Warm-read benchmark: keystead's `Client.get` against aws-secretsmanager-
caching's `SecretCache.get_secret_string`, on the same moto secret in the
same run.

Run from the repository root, with a release build of the binding in the
virtual environment (a debug build is several times slower):

    (cd bindings-python && ../.venv/bin/maturin develop --release)
    .venv/bin/python bindings-python/bench/bench_warm_get.py

The script starts its own moto server on 127.0.0.1 and stops it at the end.
Each call is timed in `--repeat` runs of `--number` calls. The table gives
the fastest and the median run, per call, and the speed-up of each over
the same figure for aws-secretsmanager-caching. On a machine shared with
other work, the fastest run is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import timeit
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backends import free_port, stop, venv_tool, wait_until_answering  # noqa: E402

SECRET_NAME = "bench/db"
SECRET_VALUE = json.dumps(
    {
        "engine": "postgres",
        "host": "db.internal.example",
        "port": 5432,
        "username": "app",
        "password": "f9Kq2-pZ7x1Lw8mN4rT6vB3cY5hJ0dG",
        "dbname": "orders",
    }
)


def per_call_ns(statement, number: int, repeat: int) -> tuple[float, float]:
    """Returns the fastest and the median timing run, per call."""
    timings = timeit.repeat(statement, number=number, repeat=repeat)
    return min(timings) / number * 1e9, statistics.median(timings) / number * 1e9


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [venv_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{endpoint}/moto-api/", process, deadline_seconds=30)
    return process, endpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run (keystead)")
    parser.add_argument("--caching-number", type=int, default=2_000, help="calls per timing run (aws caching)")
    parser.add_argument("--repeat", type=int, default=11, help="timing runs per call")
    arguments = parser.parse_args()

    moto, endpoint = start_moto()
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_EC2_METADATA_DISABLED="true",
        )
        import boto3
        from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

        import keystead

        boto = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        boto.create_secret(Name=SECRET_NAME, SecretString=SECRET_VALUE)

        reference = f"aws-sm://{SECRET_NAME}"
        client = keystead.Client()
        assert client.get(reference).reveal() == SECRET_VALUE
        cache = SecretCache(config=SecretCacheConfig(), client=boto)
        assert cache.get_secret_string(SECRET_NAME) == SECRET_VALUE

        results = {
            "keystead get": per_call_ns(lambda: client.get(reference), arguments.number, arguments.repeat),
            "keystead get + reveal": per_call_ns(
                lambda: client.get(reference).reveal(), arguments.number, arguments.repeat
            ),
            "keystead get_cached": per_call_ns(lambda: client.get_cached(reference), arguments.number, arguments.repeat),
            "aws-secretsmanager-caching get_secret_string": per_call_ns(
                lambda: cache.get_secret_string(SECRET_NAME), arguments.caching_number, arguments.repeat
            ),
        }
        client.close()
    finally:
        stop(moto)

    baseline = results["aws-secretsmanager-caching get_secret_string"]
    print(
        f"python {platform.python_version()}, keystead {version('keystead')}, "
        f"aws-secretsmanager-caching {version('aws-secretsmanager-caching')}, "
        f"boto3 {version('boto3')}, moto {version('moto')}, {os.cpu_count()} CPUs"
    )
    print(f"secret: {len(SECRET_VALUE)} bytes of JSON; {arguments.repeat} timing runs per call")
    print()
    print("| call | fastest run, per call | speed-up | median run, per call | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for name, (fastest, median) in results.items():
        print(
            f"| `{name}` | {fastest / 1000:.2f} µs | {baseline[0] / fastest:.0f}× "
            f"| {median / 1000:.2f} µs | {baseline[1] / median:.0f}× |"
        )


if __name__ == "__main__":
    main()
