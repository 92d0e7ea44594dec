"""keystead: a cached, auto-refreshing, zeroizing client for secrets.

Read a secret by reference; the value stays in Rust memory, wiped when the
last holder drops it, until you reveal it::

    import keystead

    client = keystead.Client()
    password = client.get("aws-sm://prod/db#password").reveal()

References name a provider and a path: ``aws-sm://NAME[#field]`` (AWS
Secrets Manager), ``aws-ssm://NAME`` (SSM Parameter Store),
``file:///PATH``, ``env://VARIABLE``. See docs/python.md for the whole API.
"""

from __future__ import annotations

from keystead._client import AsyncClient, Client, default_client
from keystead._errors import (
    AccessDenied,
    ClientClosed,
    ConfigError,
    DecryptionFailed,
    Error,
    FieldNotFound,
    InternalError,
    InvalidJson,
    InvalidReference,
    NotFound,
    NotText,
    SecretDeleted,
    Unavailable,
)
from keystead._native import RotationEvent, Secret, Subscription, __version__

__all__ = [
    "AccessDenied",
    "AsyncClient",
    "Client",
    "ClientClosed",
    "ConfigError",
    "DecryptionFailed",
    "Error",
    "FieldNotFound",
    "InternalError",
    "InvalidJson",
    "InvalidReference",
    "NotFound",
    "NotText",
    "RotationEvent",
    "Secret",
    "SecretDeleted",
    "Subscription",
    "Unavailable",
    "__version__",
    "default_client",
    "inject_fields",
    "inject_secret",
]

_LAZY = {"inject_secret", "inject_fields"}


def __getattr__(name: str) -> object:
    # The decorators need `functools` and `inspect`, which cost more to
    # import than the rest of the package; load them on first use.
    if name in _LAZY:
        from keystead import _decorators

        return getattr(_decorators, name)
    raise AttributeError(f"module 'keystead' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


TYPE_CHECKING = False
if TYPE_CHECKING:
    from keystead._decorators import inject_fields, inject_secret
