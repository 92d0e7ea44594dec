"""Type stub for the compiled module `keystead._native`. Import the public
names from `keystead` instead."""

import datetime
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Optional, Union, final

from keystead._errors import Error

__version__: str

_ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], None]

class Client:
    """The native client; use `keystead.Client` or `keystead.AsyncClient`."""

    def __new__(cls, config: _ConfigSource = None, **overrides: Any) -> "Client": ...
    def get_cached(self, reference: str) -> Optional["Secret"]: ...
    def get(self, reference: str, timeout: Optional[float] = None) -> "Secret": ...
    def refresh(self, reference: str, timeout: Optional[float] = None) -> "Secret": ...
    def invalidate(self, reference: str) -> bool: ...
    def prefetch(
        self, references: Union[list[str], tuple[str, ...]], timeout: Optional[float] = None
    ) -> dict[str, Optional[Error]]: ...
    def subscribe(self, reference: str, callback: Callable[["RotationEvent"], object]) -> "Subscription": ...
    def metrics(self) -> dict[str, Any]: ...
    def close(self, timeout: Optional[float] = None) -> None: ...
    @property
    def closed(self) -> bool: ...
    def _get_async(self, reference: str, timeout: Optional[float] = None) -> Awaitable[Union["Secret", Error]]: ...
    def _refresh_async(self, reference: str, timeout: Optional[float] = None) -> Awaitable[Union["Secret", Error]]: ...
    def _prefetch_async(
        self, references: list[str], timeout: Optional[float] = None
    ) -> Awaitable[Union[dict[str, Optional[Error]], Error]]: ...
    def _close_async(self, timeout: Optional[float] = None) -> Optional[Awaitable[None]]: ...

@final
class Secret:
    """A secret value and its metadata. `repr()` and `str()` never show the
    value; pickling is refused."""

    def reveal(self) -> str:
        """Return the value as a new `str`; raises `keystead.NotText` for a
        binary value."""

    def reveal_bytes(self) -> bytes:
        """Return the value's exact bytes."""

    def field(self, path: str) -> "Secret":
        """Select a field of a JSON value by dot path (``"db.port"``)."""

    @property
    def reference(self) -> str:
        """The reference the value was loaded for, without its ``#field``."""

    @property
    def provider(self) -> str:
        """The provider scheme, for example ``"aws-sm"``."""

    @property
    def name(self) -> Optional[str]:
        """The backend's name for the secret."""

    @property
    def arn(self) -> Optional[str]:
        """The backend's ARN or other unique id."""

    @property
    def version(self) -> Optional[str]:
        """The version id, else the version number as text, else None."""

    @property
    def version_id(self) -> Optional[str]:
        """The backend's version id (AWS ``VersionId``)."""

    @property
    def version_number(self) -> Optional[int]:
        """The version number (SSM parameter version, Vault KV version)."""

    @property
    def stages(self) -> tuple[str, ...]:
        """The version's staging labels (AWS ``VersionStages``, SSM labels)."""

    @property
    def created_at(self) -> Optional[datetime.datetime]:
        """When the backend created this version (aware, UTC)."""

    @property
    def fetched_at(self) -> Optional[datetime.datetime]:
        """When keystead fetched the value (aware, UTC)."""

    @property
    def refresh_at(self) -> Optional[datetime.datetime]:
        """When keystead plans to refresh the value (an estimate; aware, UTC)."""

    @property
    def expires_at(self) -> Optional[datetime.datetime]:
        """When the value stops being valid at the backend (aware, UTC)."""

    @property
    def field_path(self) -> Optional[str]:
        """The ``#field`` path that produced this value."""

    @property
    def encoding(self) -> str:
        """``"text"`` or ``"binary"``."""

    @property
    def is_binary(self) -> bool:
        """Whether the value is binary."""

    def __copy__(self) -> "Secret": ...
    def __deepcopy__(self, memo: Any) -> "Secret": ...

@final
class Subscription:
    """A live subscription; it lasts until `cancel()` or the client closes."""

    def cancel(self) -> None:
        """Stop the calls. Calling it again does nothing."""

    @property
    def reference(self) -> str:
        """The reference passed to ``subscribe``."""

    @property
    def active(self) -> bool:
        """Whether the callback is still subscribed."""

    def __enter__(self) -> "Subscription": ...
    def __exit__(self, kind: object, value: object, traceback: object) -> bool: ...

@final
class RotationEvent:
    """A notice that a subscribed reference has a new version."""

    @property
    def reference(self) -> str:
        """The reference as passed to ``subscribe``."""

    @property
    def secret(self) -> Optional[Secret]:
        """The new value, or None when selecting the field failed."""

    @property
    def error(self) -> Optional[Error]:
        """The error from selecting the field in the new version, or None."""

def _after_fork_in_child() -> None: ...
def _interpreter_exiting() -> None: ...
