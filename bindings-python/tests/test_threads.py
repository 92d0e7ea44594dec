"""Threads: the GIL is released while a call waits, and one client serves
many threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import keystead


class Ticker:
    """A thread that counts 1 ms sleeps; it only advances while it can take
    the GIL."""

    def __init__(self) -> None:
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            time.sleep(0.001)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_gil_released_while_loading(silent_client):
    with Ticker() as ticker:
        started = time.monotonic()
        with pytest.raises(keystead.Unavailable):
            silent_client.get("aws-sm://silent/gil", timeout=0.5)
        waited = time.monotonic() - started
        ticks_during_wait = ticker.ticks
    assert waited >= 0.45
    # At 1 ms a tick, a GIL held for the whole wait would leave the ticker
    # near zero. The bound is a tenth of the ideal count, for slow machines.
    assert ticks_during_wait > 50


def test_gil_released_while_waiting_for_a_shared_load(silent_client):
    # The second caller waits on the first caller's load (a lock inside
    # the cache), not on the network.
    first = threading.Thread(
        target=lambda: pytest.raises(keystead.Unavailable, silent_client.get, "aws-sm://silent/shared", timeout=1.0)
    )
    first.start()
    time.sleep(0.1)
    with Ticker() as ticker:
        with pytest.raises(keystead.Unavailable):
            silent_client.get("aws-sm://silent/shared", timeout=0.5)
        ticks = ticker.ticks
    first.join(5)
    assert ticks > 50


def test_concurrent_misses_share_one_backend_call(client, secretsmanager, prefix):
    name = f"{prefix}/threads"
    secretsmanager.create_secret(Name=name, SecretString="threaded")
    reference = f"aws-sm://{name}"
    barrier = threading.Barrier(8)

    def read() -> str:
        barrier.wait(5)
        return client.get(reference).reveal()

    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: read(), range(8)))
    assert values == ["threaded"] * 8
    assert client.metrics()["backend_calls"] == 1


def test_warm_reads_from_many_threads(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_THREADS", "steady")
    client.get("env://KEYSTEAD_PY_THREADS")

    def read_many(_: int) -> set[str]:
        return {client.get("env://KEYSTEAD_PY_THREADS").reveal() for _ in range(2000)}

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(read_many, range(4)))
    assert results == [{"steady"}] * 4
    assert client.metrics()["hits"] >= 8000


def test_close_while_another_thread_waits(silent_client):
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            silent_client.get("aws-sm://silent/closing", timeout=5)
        except keystead.Error as error:
            errors.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    silent_client.close(timeout=1)
    waiter.join(10)
    assert not waiter.is_alive()
    # Closing cancels the load in flight instead of waiting for it.
    assert time.monotonic() - started < 2
    assert len(errors) == 1
    assert isinstance(errors[0], keystead.ClientClosed)
    assert errors[0].reference == "aws-sm://silent/closing"
