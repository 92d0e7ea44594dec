"""Startup benchmark: what `import keystead` plus `keystead.Client()` add
to a fresh interpreter, beside boto3 plus aws-secretsmanager-caching's
`SecretCache`. No backend is contacted in either case.

Run from the repository root with a release build installed:

    (cd bindings-python && ../.venv/bin/maturin develop --release)
    .venv/bin/python bindings-python/bench/bench_startup.py

Each scenario runs in `--runs` fresh interpreters. Inside each, the script
reads the wall clock and the resident set size (VmRSS) before and after
the imports and the client construction. The table gives the medians of
the differences.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

# Only `time` is imported before the measured part, so that the probe
# itself loads nothing the scenarios would otherwise pay for.
PROBE = """
import time
def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
rss_before = rss_kib()
started = time.perf_counter()
{body}
elapsed = time.perf_counter() - started
rss_added = rss_kib() - rss_before
import json
print(json.dumps({{"seconds": elapsed, "rss_kib": rss_added}}))
"""

SCENARIOS = {
    "bare interpreter": "pass",
    "import keystead + Client()": "import keystead\nclient = keystead.Client()",
    "import boto3 + aws_secretsmanager_caching + SecretCache()": (
        "import boto3\n"
        "from aws_secretsmanager_caching import SecretCache\n"
        "cache = SecretCache(client=boto3.client('secretsmanager'))"
    ),
}


def measure(body: str, runs: int, environment: dict[str, str]) -> tuple[float, float]:
    seconds, rss = [], []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", PROBE.format(body=body)],
            check=True,
            capture_output=True,
            text=True,
            env=environment,
        ).stdout
        sample = json.loads(output)
        seconds.append(sample["seconds"])
        rss.append(sample["rss_kib"])
    return statistics.median(seconds), statistics.median(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per scenario")
    arguments = parser.parse_args()

    environment = dict(os.environ)
    # No network in either case: dummy credentials, a region, and no
    # instance metadata lookups.
    environment.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
    )
    environment.pop("KEYSTEAD_CONFIG", None)

    print(f"{os.cpu_count()} CPUs; median of {arguments.runs} fresh interpreters each")
    print()
    print("| scenario | time | resident memory added |")
    print("|---|---:|---:|")
    for name, body in SCENARIOS.items():
        seconds, rss_kib = measure(body, arguments.runs, environment)
        print(f"| {name} | {seconds * 1000:.1f} ms | {rss_kib / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
