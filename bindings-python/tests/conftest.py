"""Shared fixtures: a moto server for the whole session, AWS clients that
seed it, a loopback server that never responds, and a fresh keystead client
per test.

Every server is started here on 127.0.0.1 and stopped at the end; the
suite talks to no other host.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid

import pytest

import keystead

from backends import free_port, stop, venv_tool, wait_until_answering

# Environment every test runs under: AWS pointed at the suite's moto server
# with dummy credentials, no shared AWS config files, and no instance
# metadata lookups.
AWS_ENVIRONMENT = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/keystead-tests/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/keystead-tests/credentials",
}
AWS_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "KEYSTEAD_CONFIG")


@pytest.fixture(scope="session")
def moto_endpoint():
    """The URL of a moto server started for this session."""
    port = free_port()
    log = open(os.devnull, "wb")
    process = subprocess.Popen(
        [venv_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{endpoint}/moto-api/", process, deadline_seconds=30)
        yield endpoint
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session", autouse=True)
def aws_environment(moto_endpoint):
    """Points every client the suite builds at the session's moto server."""
    saved = {name: os.environ.get(name) for name in (*AWS_ENVIRONMENT, *AWS_UNSET, "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ENVIRONMENT)
    os.environ["AWS_ENDPOINT_URL"] = moto_endpoint
    for name in AWS_UNSET:
        os.environ.pop(name, None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def run_prefix() -> str:
    """A prefix unique to this run, for names created in shared backends."""
    return f"keystead-py-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def prefix(run_prefix, request) -> str:
    """A name prefix unique to this test."""
    return f"{run_prefix}/{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def secretsmanager(moto_endpoint):
    import boto3

    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def ssm(moto_endpoint):
    import boto3

    return boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def client():
    """A keystead client with default settings, closed after the test."""
    with keystead.Client() as built:
        yield built


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never responds, to hold
    a call in flight for as long as a test needs."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stopping = threading.Event()

    def accept_forever() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(connection)

    thread = threading.Thread(target=accept_forever, name="silent-server", daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stopping.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture
def silent_client(silent_port):
    """A client whose AWS calls go to `silent_port` and wait 30 s for a
    response that never comes."""
    with keystead.Client(
        aws={
            "endpoint_url": f"http://127.0.0.1:{silent_port}",
            "max_attempts": 1,
            "attempt_timeout": "30s",
        }
    ) as built:
        yield built
