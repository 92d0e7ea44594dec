"""The public clients, the default client, and process lifecycle hooks.

Both clients subclass the native client, so a warm `Client.get` is one call
into the extension with no Python frame in between. This module imports
only small standard modules at load time (`logging` and `asyncio` are
imported on first use), because `import keystead` is on the cold-start
path of every AWS Lambda function that uses it.
"""

from __future__ import annotations

import _thread
import atexit
import os
import weakref

from keystead import _native

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from typing import Any, Union

    from keystead._errors import Error
    from keystead._native import RotationEvent, Secret, Subscription

    ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], None]

# How long the `atexit` hook waits for each open client's lease
# revocations. Exiting should not hang on an unreachable backend, and two
# seconds covers a revocation round trip to a healthy one.
EXIT_CLOSE_TIMEOUT = 2.0

_open_clients: weakref.WeakSet[_native.Client] = weakref.WeakSet()


class Client(_native.Client):
    """A cached, auto-refreshing secret client.

    ``Client(config=None, **overrides)``:

    * ``config`` is a path to a ``keystead.toml``, a dict with the same
      schema (``{"cache": {"ttl": "30s"}, "aws": {"region": "eu-west-1"}}``),
      or None to load ``$KEYSTEAD_CONFIG`` (or the defaults when it is
      unset);
    * ``overrides`` are top-level config keys merged over it: tables merge
      key by key, lists and other values replace. Durations are text such
      as ``"30s"`` or a `datetime.timedelta`.

    Construction starts the client's runtime (two worker threads named
    ``keystead-worker``) and contacts no backend. Raises `ConfigError` for
    an invalid configuration.

    Every method may be called from any thread. A warm `get` returns from
    the cache without releasing the GIL; any call that waits on a backend
    or a lock releases it. The client survives ``fork``: in a child it
    starts a new runtime on first use, and re-subscribes callbacks then.
    """

    def __init__(self, config: ConfigSource = None, **overrides: Any) -> None:
        # The native constructor has already built the client from the
        # same arguments.
        _open_clients.add(self)

    if TYPE_CHECKING:

        def get(self, reference: str, timeout: float | None = None) -> Secret:
            """Read a reference, from the cache when the value is fresh.

            Concurrent misses on one reference share one backend call. When
            the backend fails transiently and a value within ``max_stale``
            is cached, that value is returned. ``timeout`` is in seconds
            (None: no limit beyond the provider's own); when it passes,
            `Unavailable` is raised and the load goes on in the background.
            """

        def get_cached(self, reference: str) -> Secret | None:
            """Return the fresh cached value, or None, without waiting."""

        def refresh(self, reference: str, timeout: float | None = None) -> Secret:
            """Load a reference from its backend now, skipping any backoff."""

        def invalidate(self, reference: str) -> bool:
            """Drop and wipe a cached value; return whether one was cached."""

        def prefetch(
            self, references: list[str] | tuple[str, ...], timeout: float | None = None
        ) -> dict[str, Error | None]:
            """Load several references at once (batch calls where the backend
            has them). Return each reference mapped to None when it is now
            cached, or to the exception its load failed with."""

        def metrics(self) -> dict[str, Any]:
            """Return the cache's counters: hits, misses, refreshes,
            stale_serves, backend_calls, rotations, evictions, entries,
            errors (class name to count), load_latency_buckets,
            load_latency_sum (seconds) and load_count."""

        def close(self, timeout: float | None = None) -> None:
            """Close the client: stop background work, wipe cached values,
            end subscriptions, and wait up to ``timeout`` seconds for lease
            revocations. Later calls raise `ClientClosed`."""

        @property
        def closed(self) -> bool:
            """Whether `close` was called."""

    def subscribe(self, reference: str, callback: Callable[[RotationEvent], object]) -> Subscription:
        """Call ``callback(event)`` once for every new version of
        ``reference``; the first load is not a rotation.

        The callback runs with the GIL held on a ``keystead-worker`` thread
        of this client's runtime, and should return quickly. An exception
        it raises is logged to the ``keystead`` logger and dropped. A
        subscribed reference is refreshed in the background even when
        no caller reads it. The subscription lasts until
        `Subscription.cancel` or `close`.
        """
        return super().subscribe(reference, _logged_callback(reference, callback))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<keystead.{type(self).__name__} {state}>"


class AsyncClient(_native.Client):
    """The asyncio client: `Client`'s methods as coroutines.

    Takes the same arguments as `Client`. Loads run on the client's own
    runtime threads, never on the event loop, so the client works from any
    asyncio loop, and from several at once. A warm `get` returns without
    leaving the loop's thread. Cancelling a call stops waiting for it; a
    load already started still fills the cache.
    """

    def __init__(self, config: ConfigSource = None, **overrides: Any) -> None:
        _open_clients.add(self)

    if TYPE_CHECKING:

        def get_cached(self, reference: str) -> Secret | None:
            """Return the fresh cached value, or None, without waiting."""

        @property
        def closed(self) -> bool:
            """Whether `close` was called."""

    async def get(self, reference: str, timeout: float | None = None) -> Secret:  # type: ignore[override]
        """Read a reference, from the cache when the value is fresh. See
        `Client.get`."""
        cached = self.get_cached(reference)
        if cached is not None:
            return cached
        secret: Secret = _raise_error(await self._get_async(reference, timeout))
        return secret

    async def refresh(self, reference: str, timeout: float | None = None) -> Secret:  # type: ignore[override]
        """Load a reference from its backend now. See `Client.refresh`."""
        secret: Secret = _raise_error(await self._refresh_async(reference, timeout))
        return secret

    async def invalidate(self, reference: str) -> bool:  # type: ignore[override]
        """Drop and wipe a cached value; return whether one was cached."""
        return super().invalidate(reference)

    async def prefetch(  # type: ignore[override]
        self, references: Iterable[str], timeout: float | None = None
    ) -> dict[str, Error | None]:
        """Load several references at once. See `Client.prefetch`."""
        outcomes: dict[str, Error | None] = _raise_error(await self._prefetch_async(list(references), timeout))
        return outcomes

    async def subscribe(  # type: ignore[override]
        self,
        reference: str,
        callback: Callable[[RotationEvent], Awaitable[object] | object],
    ) -> Subscription:
        """Call ``callback(event)`` on the running event loop once for every
        new version of ``reference``.

        A coroutine function is run as a task on that loop. Exceptions are
        logged to the ``keystead`` logger. When the loop has closed, events
        are dropped with a warning.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        return super().subscribe(reference, _loop_callback(loop, reference, callback))

    async def metrics(self) -> dict[str, Any]:  # type: ignore[override]
        """Return the cache's counters. See `Client.metrics`."""
        return super().metrics()

    async def close(self, timeout: float | None = None) -> None:  # type: ignore[override]
        """Close the client and wait up to ``timeout`` seconds for lease
        revocations. See `Client.close`."""
        revocations = self._close_async(timeout)
        if revocations is not None:
            await revocations
        # Stops the runtime; the revocations are done, so this returns at
        # once.
        super().close(0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<keystead.AsyncClient {state}>"


_default_client: Client | None = None
_default_lock = _thread.allocate_lock()


def default_client() -> Client:
    """Return the process-wide `Client` built from ``$KEYSTEAD_CONFIG`` (or
    the defaults), creating it on first use, or again after it was closed.

    The decorators use it when they are given no client.
    """
    global _default_client
    client = _default_client
    if client is not None and not client.closed:
        return client
    with _default_lock:
        if _default_client is None or _default_client.closed:
            _default_client = Client()
        return _default_client


def _raise_error(outcome: Any) -> Any:
    # The native async calls resolve to the exception instead of raising it
    # on a runtime thread; raise it here, in the caller's task.
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _logger() -> Any:
    # Imported on first use: `logging` alone costs more to import than the
    # rest of the package.
    import logging

    return logging.getLogger("keystead")


def _logged_callback(reference: str, callback: Callable[[RotationEvent], object]) -> Callable[[RotationEvent], None]:
    if not callable(callback):
        raise TypeError(f"subscribe: callback must be callable, got {type(callback).__name__}")

    def call(event: RotationEvent) -> None:
        try:
            callback(event)
        except Exception:
            _logger().exception("rotation callback for %s raised; the exception was dropped", reference)

    return call


def _loop_callback(
    loop: Any,
    reference: str,
    callback: Callable[[RotationEvent], Awaitable[object] | object],
) -> Callable[[RotationEvent], None]:
    if not callable(callback):
        raise TypeError(f"subscribe: callback must be callable, got {type(callback).__name__}")

    def run_on_loop(event: RotationEvent) -> None:
        try:
            result = callback(event)
            if hasattr(result, "__await__"):
                task = loop.create_task(result)
                task.add_done_callback(report_task)
        except Exception:
            _logger().exception("rotation callback for %s raised; the exception was dropped", reference)

    def report_task(task: Any) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            _logger().error(
                "rotation callback for %s raised; the exception was dropped",
                reference,
                exc_info=(type(error), error, error.__traceback__),
            )

    def hand_to_loop(event: RotationEvent) -> None:
        try:
            loop.call_soon_threadsafe(run_on_loop, event)
        except RuntimeError:
            _logger().warning("rotation of %s not delivered: the event loop is closed", reference)

    return hand_to_loop


def _close_open_clients() -> None:
    # Runtime threads must stop calling into Python before the interpreter
    # finalizes, and leases should be revoked on a normal exit.
    _native._interpreter_exiting()
    for client in list(_open_clients):
        try:
            _native.Client.close(client, EXIT_CLOSE_TIMEOUT)
        except Exception:
            _logger().exception("closing a keystead client at exit failed")


atexit.register(_close_open_clients)

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_native._after_fork_in_child)
