"""keystead.AsyncClient: coroutines on keystead's runtime, from any loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import keystead


@pytest.fixture
async def async_client():
    async with keystead.AsyncClient() as built:
        yield built


async def test_get_and_warm_get(async_client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC", "value")
    secret = await async_client.get("env://KEYSTEAD_PY_ASYNC")
    assert secret.reveal() == "value"
    again = await async_client.get("env://KEYSTEAD_PY_ASYNC")
    assert again.reveal() == "value"
    metrics = await async_client.metrics()
    assert metrics["misses"] == 1
    assert metrics["hits"] >= 1


async def test_aws_read(async_client, secretsmanager, prefix):
    name = f"{prefix}/async"
    secretsmanager.create_secret(Name=name, SecretString='{"password": "pw"}')
    secret = await async_client.get(f"aws-sm://{name}#password")
    assert secret.reveal() == "pw"
    assert secret.provider == "aws-sm"


async def test_errors_raise_their_class(async_client):
    with pytest.raises(keystead.NotFound) as raised:
        await async_client.get("env://KEYSTEAD_PY_ASYNC_MISSING")
    assert raised.value.reference == "env://KEYSTEAD_PY_ASYNC_MISSING"
    with pytest.raises(keystead.InvalidReference):
        await async_client.get("no scheme")


async def test_concurrent_misses_share_one_load(async_client, secretsmanager, prefix):
    name = f"{prefix}/shared"
    secretsmanager.create_secret(Name=name, SecretString="shared")
    reference = f"aws-sm://{name}"
    secrets = await asyncio.gather(*(async_client.get(reference) for _ in range(20)))
    assert {secret.reveal() for secret in secrets} == {"shared"}
    assert (await async_client.metrics())["backend_calls"] == 1


async def test_refresh_invalidate_prefetch(async_client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC_R", "one")
    await async_client.get("env://KEYSTEAD_PY_ASYNC_R")
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC_R", "two")
    assert (await async_client.refresh("env://KEYSTEAD_PY_ASYNC_R")).reveal() == "two"
    assert await async_client.invalidate("env://KEYSTEAD_PY_ASYNC_R") is True
    assert async_client.get_cached("env://KEYSTEAD_PY_ASYNC_R") is None

    outcomes = await async_client.prefetch(iter(["env://KEYSTEAD_PY_ASYNC_R", "env://KEYSTEAD_PY_ASYNC_NONE"]))
    assert outcomes["env://KEYSTEAD_PY_ASYNC_R"] is None
    assert isinstance(outcomes["env://KEYSTEAD_PY_ASYNC_NONE"], keystead.NotFound)


async def test_loop_keeps_running_while_loading(silent_port):
    async with keystead.AsyncClient(
        aws={"endpoint_url": f"http://127.0.0.1:{silent_port}", "max_attempts": 1, "attempt_timeout": "30s"}
    ) as client:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        started = time.monotonic()
        with pytest.raises(keystead.Unavailable):
            await client.get("aws-sm://silent/secret", timeout=0.5)
        elapsed = time.monotonic() - started
        ticker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ticker
    assert 0.4 < elapsed < 5
    assert ticks >= 10


async def test_cancel_stops_waiting(silent_port):
    async with keystead.AsyncClient(
        aws={"endpoint_url": f"http://127.0.0.1:{silent_port}", "max_attempts": 1, "attempt_timeout": "30s"}
    ) as client:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.get("aws-sm://silent/cancelled"), 0.3)


async def test_close_rejects_later_calls(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC_CLOSE", "x")
    client = keystead.AsyncClient()
    await client.get("env://KEYSTEAD_PY_ASYNC_CLOSE")
    await client.close()
    assert client.closed
    assert repr(client) == "<keystead.AsyncClient closed>"
    with pytest.raises(keystead.ClientClosed):
        await client.get("env://KEYSTEAD_PY_ASYNC_CLOSE")
    await client.close()


async def test_subscribe_runs_callback_on_loop(async_client, secretsmanager, prefix):
    name = f"{prefix}/async-sub"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    await async_client.get(reference)
    loop_thread = threading.get_ident()
    received: asyncio.Queue = asyncio.Queue()

    def plain(event):
        received.put_nowait(("plain", event.secret.reveal(), threading.get_ident()))

    async def coroutine(event):
        await asyncio.sleep(0)
        received.put_nowait(("coroutine", event.secret.reveal(), threading.get_ident()))

    await async_client.subscribe(reference, plain)
    await async_client.subscribe(reference, coroutine)
    secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
    await async_client.refresh(reference)
    results = [await asyncio.wait_for(received.get(), 10) for _ in range(2)]
    assert sorted(results) == [("coroutine", "v2", loop_thread), ("plain", "v2", loop_thread)]


def test_one_client_serves_several_loops(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_LOOPS", "shared")
    client = keystead.AsyncClient()
    results = []

    def run_loop() -> None:
        async def read() -> str:
            secret = await client.refresh("env://KEYSTEAD_PY_LOOPS")
            return secret.reveal()

        results.append(asyncio.run(read()))

    threads = [threading.Thread(target=run_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["shared"] * 3
    asyncio.run(client.close())


def test_async_call_needs_a_running_loop():
    client = keystead.AsyncClient()
    try:
        with pytest.raises(RuntimeError):
            client._get_async("env://HOME")
    finally:
        asyncio.run(client.close())
