"""Exception classes: one per core error class, catchable and picklable."""

from __future__ import annotations

import pickle

import pytest

import keystead
from keystead import _errors

# Core's error class names (ErrorClass::as_str) and the class each maps to.
CORE_CLASSES = {
    "invalid-reference": keystead.InvalidReference,
    "config": keystead.ConfigError,
    "not-found": keystead.NotFound,
    "access-denied": keystead.AccessDenied,
    "secret-deleted": keystead.SecretDeleted,
    "decryption-failed": keystead.DecryptionFailed,
    "unavailable": keystead.Unavailable,
    "not-text": keystead.NotText,
    "field-not-found": keystead.FieldNotFound,
    "invalid-json": keystead.InvalidJson,
    "closed": keystead.ClientClosed,
    "internal": keystead.InternalError,
}


def test_one_class_per_core_class():
    assert _errors._BY_CLASS == CORE_CLASSES
    assert len(set(CORE_CLASSES.values())) == len(CORE_CLASSES)
    for name, cls in CORE_CLASSES.items():
        assert issubclass(cls, keystead.Error)
        assert cls.error_class == name
        assert cls.__module__ == "keystead"
        assert getattr(keystead, cls.__name__) is cls


def test_builtin_bases():
    assert issubclass(keystead.InvalidReference, ValueError)
    assert issubclass(keystead.ConfigError, ValueError)
    assert issubclass(keystead.NotFound, LookupError)
    assert issubclass(keystead.FieldNotFound, LookupError)
    assert issubclass(keystead.NotText, ValueError)
    assert issubclass(keystead.InvalidJson, ValueError)
    assert issubclass(keystead.ClientClosed, RuntimeError)
    assert issubclass(keystead.Error, Exception)


def test_raised_error_has_reference_and_class(client):
    with pytest.raises(keystead.NotFound) as raised:
        client.get("env://KEYSTEAD_PY_NEVER_SET")
    error = raised.value
    assert error.reference == "env://KEYSTEAD_PY_NEVER_SET"
    assert error.error_class == "not-found"
    assert str(error).startswith("env://KEYSTEAD_PY_NEVER_SET: not-found: ")


def test_invalid_reference(client):
    with pytest.raises(keystead.InvalidReference) as raised:
        client.get("gopher://x")
    assert raised.value.error_class == "invalid-reference"


@pytest.mark.parametrize("cls", list(CORE_CLASSES.values()))
def test_errors_pickle_round_trip(cls):
    error = cls("env://X: something failed", "env://X", cls.error_class)
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is cls
    assert str(restored) == str(error)
    assert restored.reference == "env://X"
    assert restored.error_class == cls.error_class


def test_unknown_class_name_keeps_base():
    error = keystead.Error("x: future-class: message", "x", "future-class")
    assert error.error_class == "future-class"
    restored = pickle.loads(pickle.dumps(error))
    assert restored.error_class == "future-class"
