"""Exception classes: one per keystead error class, all under `Error`.

Each class matches one of the error classes shared by every keystead API
(Rust, Python, Node, Go). Some also derive from the built-in exception a
Python caller would expect: `ValueError` for bad input, `LookupError` for
something missing, `RuntimeError` for a closed client.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every exception keystead raises.

    Attributes:
        reference: The reference the failure concerns, or None.
        error_class: The stable error class name shared by every keystead
            API, for example ``"not-found"``.

    Messages never contain a secret value.
    """

    error_class = "internal"

    def __init__(
        self,
        message: str = "",
        reference: str | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reference = reference
        if error_class is not None:
            self.error_class = error_class

    def __reduce__(self) -> tuple[type[Error], tuple[str, str | None, str]]:
        # The default reduction drops `reference` and `error_class`, which
        # `multiprocessing` would lose when it sends the error to a parent.
        message = self.args[0] if self.args else ""
        return (type(self), (message, self.reference, self.error_class))


class InvalidReference(Error, ValueError):
    """The reference does not follow ``SCHEME://PATH[?QUERY][#FIELD]``,
    names an unknown scheme, or has a query key its provider rejects."""

    error_class = "invalid-reference"


class ConfigError(Error, ValueError):
    """The configuration file, dict or a keyword override is invalid."""

    error_class = "config"


class NotFound(Error, LookupError):
    """The backend has no secret, version or stage by that name."""

    error_class = "not-found"


class AccessDenied(Error):
    """The backend rejected the caller's credentials or permissions."""

    error_class = "access-denied"


class SecretDeleted(Error):
    """The secret exists but is deleted, scheduled for deletion or
    destroyed."""

    error_class = "secret-deleted"


class DecryptionFailed(Error):
    """The backend could not decrypt the value, usually because the caller
    may not use the KMS key that protects it."""

    error_class = "decryption-failed"


class Unavailable(Error):
    """The backend could not be reached, failed transiently (timeout,
    connection error, 5xx, throttling), or the call's timeout passed.
    Retrying later may work."""

    error_class = "unavailable"


class NotText(Error, ValueError):
    """Text was requested from a binary value; use `reveal_bytes()`."""

    error_class = "not-text"


class FieldNotFound(Error, LookupError):
    """A field selector named a field the JSON value does not contain, or
    whose value is null."""

    error_class = "field-not-found"


class InvalidJson(Error, ValueError):
    """A field selector was applied to a value that is not a JSON object or
    array."""

    error_class = "invalid-json"


class ClientClosed(Error, RuntimeError):
    """The client was closed."""

    error_class = "closed"


class InternalError(Error):
    """A bug in keystead or an unexpected response from a backend."""

    error_class = "internal"


_BY_CLASS = {
    cls.error_class: cls
    for cls in (
        InvalidReference,
        ConfigError,
        NotFound,
        AccessDenied,
        SecretDeleted,
        DecryptionFailed,
        Unavailable,
        NotText,
        FieldNotFound,
        InvalidJson,
        ClientClosed,
        InternalError,
    )
}

# Shown in tracebacks and reprs, and used by pickle, as `keystead.NotFound`
# and so on: the names users import.
for _cls in (Error, *_BY_CLASS.values()):
    _cls.__module__ = "keystead"
del _cls
