"""Fork safety: a client used before ``fork`` works in the child, which
builds a new runtime on first use, and no child hangs.

Every child runs under a deadline and is killed when it passes it, so a
deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
from typing import Any, Callable

import pytest

import keystead

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12 and later warn when a process with threads forks; forking
    # such a process is exactly what these tests check.
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]

CHILD_DEADLINE_SECONDS = 30.0


def run_in_child(body: Callable[[], Any], deadline: float = CHILD_DEADLINE_SECONDS) -> Any:
    """Forks, runs `body` in the child, and returns what it returned
    (through JSON); fails the test when the child raises or hangs."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        status = 0
        try:
            payload = {"result": body()}
        except BaseException:
            payload = {"error": traceback.format_exc()}
            status = 1
        os.write(write_end, json.dumps(payload).encode())
        os.close(write_end)
        os._exit(status)

    os.close(write_end)
    give_up_at = time.monotonic() + deadline
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        if time.monotonic() > give_up_at:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            pytest.fail(f"the fork child did not finish within {deadline} s (deadlock?)")
        time.sleep(0.02)

    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    payload = json.loads(b"".join(chunks) or b"{}")
    assert "error" not in payload, payload["error"]
    assert os.waitstatus_to_exitcode(status) == 0
    return payload["result"]


def test_child_reads_after_parent_used_client(client, secretsmanager, prefix, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_FORK", "from-parent-env")
    name = f"{prefix}/fork"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    assert client.get(reference).reveal() == "v1"
    secretsmanager.put_secret_value(SecretId=name, SecretString="v2")

    def child() -> dict[str, Any]:
        return {
            # The child starts with an empty cache: this is a fresh load.
            "aws": client.get(reference).reveal(),
            "env": client.get("env://KEYSTEAD_PY_FORK").reveal(),
            "refresh": client.refresh(reference).reveal(),
            "metrics_misses": client.metrics()["misses"],
            "worker_threads": sorted(
                name
                for name in (
                    open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")
                )
                if name.startswith("keystead")
            ),
        }

    result = run_in_child(child)
    assert result["aws"] == "v2"
    assert result["env"] == "from-parent-env"
    assert result["refresh"] == "v2"
    assert result["metrics_misses"] == 2
    assert "keystead-worker" in result["worker_threads"]
    # The parent's client is untouched.
    assert client.get(reference).reveal() == "v1"
    assert client.refresh(reference).reveal() == "v2"


def test_child_may_close_inherited_client(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_FORK_CLOSE", "x")
    client = keystead.Client()
    client.get("env://KEYSTEAD_PY_FORK_CLOSE")

    def child() -> bool:
        started = time.monotonic()
        client.close()
        return client.closed and time.monotonic() - started < 5

    assert run_in_child(child) is True
    assert client.get("env://KEYSTEAD_PY_FORK_CLOSE").reveal() == "x"
    client.close()


def test_child_drops_unused_client(secretsmanager, prefix):
    name = f"{prefix}/fork-drop"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    holder = {"client": keystead.Client()}
    subscription = holder["client"].subscribe(f"aws-sm://{name}", lambda event: None)

    def child() -> bool:
        import gc

        # The inherited client and its subscription are dropped without
        # the child ever using them.
        holder.clear()
        gc.collect()
        return True

    assert run_in_child(child) is True
    assert subscription.active
    holder["client"].close()
    assert not subscription.active


def test_fork_while_a_call_waits(silent_client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_FORK_BUSY", "busy-value")
    outcome: list[str] = []

    def wait_on_silent_backend() -> None:
        try:
            silent_client.get("aws-sm://silent/in-flight", timeout=3)
        except keystead.Unavailable:
            outcome.append("timed out")

    waiter = threading.Thread(target=wait_on_silent_backend)
    waiter.start()
    time.sleep(0.3)

    def child() -> str:
        return silent_client.get("env://KEYSTEAD_PY_FORK_BUSY").reveal()

    assert run_in_child(child, deadline=20) == "busy-value"
    waiter.join(10)
    assert outcome == ["timed out"]


def test_subscription_resumes_in_child(client, secretsmanager, prefix):
    name = f"{prefix}/fork-sub"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    client.get(reference)
    delivered = threading.Event()
    values: list[str] = []

    def on_rotation(event) -> None:
        values.append(event.secret.reveal())
        delivered.set()

    client.subscribe(reference, on_rotation)

    def child() -> list[str]:
        import boto3

        # The first read in the child loads v1 into the new cache and
        # subscribes again; the refresh then finds v2, a rotation.
        client.get(reference)
        boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString="v2-from-child")
        client.refresh(reference)
        assert delivered.wait(10), "the rotation callback did not run in the child"
        return values

    assert run_in_child(child) == ["v2-from-child"]
    assert values == []


def test_async_client_in_child(secretsmanager, prefix):
    name = f"{prefix}/fork-async"
    secretsmanager.create_secret(Name=name, SecretString="async-v1")
    reference = f"aws-sm://{name}"
    client = keystead.AsyncClient()

    async def read() -> str:
        return (await client.get(reference)).reveal()

    assert asyncio.run(read()) == "async-v1"

    def child() -> str:
        client.invalidate(reference)
        return asyncio.run(read())

    assert run_in_child(child) == "async-v1"
    asyncio.run(client.close())


# multiprocessing with the fork start method: the workers inherit
# `_POOL_CLIENT`, warmed by the parent before the pool starts.
_POOL_CLIENT: keystead.Client | None = None


def _read_in_worker(reference: str) -> tuple[str, int]:
    assert _POOL_CLIENT is not None
    return _POOL_CLIENT.get(reference).reveal(), os.getpid()


def test_multiprocessing_fork_pool(secretsmanager, prefix):
    global _POOL_CLIENT
    names = [f"{prefix}/pool-{index}" for index in range(6)]
    for index, name in enumerate(names):
        secretsmanager.create_secret(Name=name, SecretString=f"pool-value-{index}")
    references = [f"aws-sm://{name}" for name in names]

    _POOL_CLIENT = keystead.Client()
    try:
        _POOL_CLIENT.get(references[0])
        context = multiprocessing.get_context("fork")
        with context.Pool(2) as pool:
            result = pool.map_async(_read_in_worker, references, chunksize=1)
            values = result.get(timeout=CHILD_DEADLINE_SECONDS)
        assert [value for value, _ in values] == [f"pool-value-{index}" for index in range(6)]
        assert os.getpid() not in {pid for _, pid in values}
    finally:
        _POOL_CLIENT.close()
        _POOL_CLIENT = None


def test_multiprocessing_error_keeps_its_class(prefix):
    global _POOL_CLIENT
    _POOL_CLIENT = keystead.Client()
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:
            result = pool.apply_async(_read_in_worker, (f"aws-sm://{prefix}/absent",))
            with pytest.raises(keystead.NotFound) as raised:
                result.get(timeout=CHILD_DEADLINE_SECONDS)
        assert raised.value.reference == f"aws-sm://{prefix}/absent"
        assert raised.value.error_class == "not-found"
    finally:
        _POOL_CLIENT.close()
        _POOL_CLIENT = None
