"""Decorators that pass secrets into existing functions as keyword arguments.

Both read the secret when the function is called, never when it is
decorated, so a rotated value reaches the next call and a module that
imports a decorated function does not need the backend. They fill
parameters by keyword, so ``self`` and ``cls`` keep their places, and they
leave alone a parameter the caller passed, by keyword or by position.
"""

from __future__ import annotations

import functools
import inspect

from keystead import _native
from keystead._client import AsyncClient, default_client
from keystead._errors import FieldNotFound, InvalidJson, NotText

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, TypeVar, Union

    from keystead._client import Client
    from keystead._native import Secret

    R = TypeVar("R")
    ClientSource = Union[Client, AsyncClient, Callable[[], Union[Client, AsyncClient]], None]


def inject_secret(
    reference: str,
    *,
    into: str = "secret",
    client: ClientSource = None,
    reveal: bool = True,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Pass the secret at ``reference`` to every call as keyword ``into``.

    The value is read from the client's cache at each call (a backend call
    only when it is not cached or is due), revealed as ``str``, or passed
    as the `Secret` itself when ``reveal`` is False. ``client`` is a
    `Client`, an `AsyncClient` (coroutine functions only), a function
    returning one, or None for `default_client()`.

    Works on functions, methods, class and static methods, and coroutine
    functions::

        class Repository:
            @keystead.inject_secret("aws-sm://prod/db#password", into="password")
            def connect(self, password):
                ...

    Raises `TypeError` at decoration when the function has no parameter
    named ``into``.
    """
    _check_reference("inject_secret", reference)

    def produce(secret: Secret, missing: list[str], where: str) -> dict[str, Any]:
        return {name: secret.reveal() if reveal else secret for name in missing}

    def decorate(function: Callable[..., R]) -> Callable[..., R]:
        wrapped: Callable[..., R] = _decorate("inject_secret", function, reference, {into: reference}, client, produce)
        return wrapped

    return decorate


def inject_fields(
    reference: str,
    fields: Sequence[str] | Mapping[str, str],
    *,
    client: ClientSource = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Pass fields of the JSON secret at ``reference`` as keyword arguments.

    ``fields`` lists parameter names that are also the field names
    (``["username", "password"]``), or maps parameter names to field paths
    (``{"user": "username", "port": "db.port"}``). Every call reads the
    secret once, so all fields come from the same version, and passes each
    field as ``str`` (non-string JSON values as compact JSON text).

    At call time, raises `InvalidJson` when the value is not a JSON object
    or array, and `FieldNotFound` when a field is missing or null. Both
    messages name the reference, the field and the parameter. ``client`` is
    as for `inject_secret`.
    """
    _check_reference("inject_fields", reference)
    paths = _field_paths(fields)

    def produce(secret: Secret, missing: list[str], where: str) -> dict[str, Any]:
        values = {}
        for name in missing:
            try:
                values[name] = secret.field(paths[name]).reveal()
            except (InvalidJson, FieldNotFound, NotText) as error:
                message = f"{error} (inject_fields could not fill parameter {name!r} of {where})"
                raise type(error)(message, error.reference, error.error_class) from error
        return values

    def decorate(function: Callable[..., R]) -> Callable[..., R]:
        wrapped: Callable[..., R] = _decorate("inject_fields", function, reference, paths, client, produce)
        return wrapped

    return decorate


def _check_reference(decorator: str, reference: object) -> None:
    if not isinstance(reference, str):
        raise TypeError(f"{decorator}: reference must be a str such as 'aws-sm://prod/db', got {reference!r}")


def _field_paths(fields: object) -> dict[str, str]:
    if isinstance(fields, str):
        fields = [fields]
    if hasattr(fields, "items"):
        paths = dict(fields.items())
    elif hasattr(fields, "__iter__"):
        paths = {name: name for name in fields}
    else:
        raise TypeError(f"inject_fields: fields must be a list of names or a dict of parameter to field, got {fields!r}")
    if not paths:
        raise ValueError("inject_fields: fields must name at least one field")
    for name, path in paths.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"inject_fields: parameter name {name!r} is not a Python identifier")
        if not isinstance(path, str) or not path:
            raise TypeError(f"inject_fields: field path for parameter {name!r} must be a non-empty str")
    return paths


def _decorate(
    decorator: str,
    function: Any,
    reference: str,
    params: Mapping[str, str],
    client: ClientSource,
    produce: Callable[[Secret, list[str], str], dict[str, Any]],
) -> Any:
    # `classmethod` and `staticmethod` objects are not callable before
    # Python 3.10: wrap the function inside and wrap it back.
    if isinstance(function, (classmethod, staticmethod)):
        inner = _decorate(decorator, function.__func__, reference, params, client, produce)
        return type(function)(inner)
    if not callable(function):
        raise TypeError(f"{decorator} decorates functions and methods, not {type(function).__name__}")

    positions = _parameter_positions(decorator, function, params)
    is_async = inspect.iscoroutinefunction(function)
    _check_client(decorator, client, is_async)
    where = f"{getattr(function, '__qualname__', repr(function))}()"

    def missing_params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
        return [
            name
            for name in params
            if name not in kwargs and (positions[name] is None or len(args) <= positions[name])  # type: ignore[operator]
        ]

    if is_async:

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            missing = missing_params(args, kwargs)
            if missing:
                secret = await _read_async(_resolve(client), reference)
                kwargs.update(produce(secret, missing, where))
            return await function(*args, **kwargs)

        return async_wrapper

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        missing = missing_params(args, kwargs)
        if missing:
            secret = _read(decorator, _resolve(client), reference)
            kwargs.update(produce(secret, missing, where))
        return function(*args, **kwargs)

    return wrapper


def _parameter_positions(decorator: str, function: Any, params: Mapping[str, str]) -> dict[str, int | None]:
    """Map each injected parameter to its positional index, or None when it
    is keyword-only or taken by ``**kwargs``."""
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    takes_kwargs = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)
    name = getattr(function, "__qualname__", repr(function))

    positions: dict[str, int | None] = {}
    for param in params:
        found = signature.parameters.get(param)
        if found is None:
            if not takes_kwargs:
                raise TypeError(f"{decorator}: {name}() has no parameter named {param!r} to receive the secret")
            positions[param] = None
        elif found.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            positions[param] = parameters.index(found)
        elif found.kind is inspect.Parameter.KEYWORD_ONLY:
            positions[param] = None
        else:
            raise TypeError(
                f"{decorator}: parameter {param!r} of {name}() cannot be passed by keyword; "
                "make it a normal or keyword-only parameter"
            )
    return positions


def _check_client(decorator: str, client: object, is_async: bool) -> None:
    if client is None or (callable(client) and not isinstance(client, _native.Client)):
        return
    if not isinstance(client, _native.Client):
        raise TypeError(f"{decorator}: client must be a keystead Client, an AsyncClient, a function returning one, or None")
    if isinstance(client, AsyncClient) and not is_async:
        raise TypeError(f"{decorator}: an AsyncClient can only feed coroutine functions; pass a keystead.Client")


def _resolve(client: ClientSource) -> Any:
    if client is None:
        return default_client()
    if isinstance(client, _native.Client):
        return client
    return client()


def _read(decorator: str, client: Any, reference: str) -> Secret:
    if isinstance(client, AsyncClient):
        raise TypeError(f"{decorator}: the client factory returned an AsyncClient for a synchronous function")
    secret: Secret = client.get(reference)
    return secret


async def _read_async(client: Any, reference: str) -> Secret:
    if isinstance(client, AsyncClient):
        secret: Secret = await client.get(reference)
        return secret
    cached: Secret | None = client.get_cached(reference)
    if cached is not None:
        return cached

    # A miss on a blocking client would stall the event loop, so it waits
    # on a worker thread instead.
    import asyncio

    loaded: Secret = await asyncio.to_thread(client.get, reference)
    return loaded
