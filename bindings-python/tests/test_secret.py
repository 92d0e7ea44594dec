"""keystead.Secret: revealing, fields, metadata, redaction and pickling."""

from __future__ import annotations

import copy
import datetime
import pickle

import pytest

import keystead


@pytest.fixture
def json_secret(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_JSON", '{"user": "app", "port": 5432, "tls": {"on": true}, "a.b": "dotted", "none": null}')
    return client.get("env://KEYSTEAD_PY_JSON")


def test_reveal_returns_new_str_each_time(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_REVEAL", "value")
    secret = client.get("env://KEYSTEAD_PY_REVEAL")
    first = secret.reveal()
    second = secret.reveal()
    assert first == second == "value"
    assert type(first) is str
    assert secret.reveal_bytes() == b"value"


def test_field_selection(json_secret):
    assert json_secret.field("user").reveal() == "app"
    assert json_secret.field("port").reveal() == "5432"
    assert json_secret.field("tls").reveal() == '{"on":true}'
    assert json_secret.field("tls.on").reveal() == "true"
    assert json_secret.field("a%2Eb").reveal() == "dotted"
    assert json_secret.field("user").field_path == "user"
    assert json_secret.field_path is None


def test_field_errors(json_secret, client, monkeypatch):
    with pytest.raises(keystead.FieldNotFound) as raised:
        json_secret.field("password")
    assert raised.value.reference == "env://KEYSTEAD_PY_JSON"
    assert "password" in str(raised.value)
    with pytest.raises(keystead.FieldNotFound):
        json_secret.field("none")
    with pytest.raises(keystead.InvalidReference):
        json_secret.field("")

    monkeypatch.setenv("KEYSTEAD_PY_PLAIN", "plain text")
    with pytest.raises(keystead.InvalidJson):
        client.get("env://KEYSTEAD_PY_PLAIN").field("user")


def test_metadata_of_env_secret(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_META", "x")
    before = datetime.datetime.now(datetime.timezone.utc)
    secret = client.get("env://KEYSTEAD_PY_META")
    assert secret.provider == "env"
    assert secret.version is None
    assert secret.version_id is None
    assert secret.version_number is None
    assert secret.stages == ()
    assert secret.arn is None
    assert secret.created_at is None
    assert secret.expires_at is None
    assert secret.encoding == "text"
    assert secret.is_binary is False
    assert secret.fetched_at.tzinfo is datetime.timezone.utc
    assert before - datetime.timedelta(seconds=1) <= secret.fetched_at <= before + datetime.timedelta(seconds=5)
    assert secret.refresh_at is None or secret.refresh_at > secret.fetched_at


def test_repr_and_str_are_redacted(json_secret):
    text = repr(json_secret)
    assert text.startswith("<keystead.Secret reference=")
    assert "[REDACTED]" in text
    assert "app" not in text
    assert str(json_secret) == "[REDACTED]"
    assert f"{json_secret}" == "[REDACTED]"
    assert f"{json_secret:>12}" == "  [REDACTED]"
    assert "app" not in repr(json_secret.field("user"))


def test_pickling_is_refused(json_secret):
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(json_secret, protocol=protocol)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps({"nested": [json_secret]})


def test_copy_returns_same_object(json_secret):
    assert copy.copy(json_secret) is json_secret
    assert copy.deepcopy({"s": json_secret})["s"] is json_secret


def test_secret_is_immutable(json_secret):
    with pytest.raises(AttributeError):
        json_secret.reference = "env://OTHER"
    with pytest.raises(AttributeError):
        json_secret.extra = 1
    with pytest.raises(TypeError):
        type("Sub", (keystead.Secret,), {})


def test_secret_cannot_be_built_from_python():
    with pytest.raises(TypeError):
        keystead.Secret()


def test_binary_file_secret(client, tmp_path):
    path = tmp_path / "key.bin"
    path.write_bytes(b"\x00\xff\xfe\x01")
    secret = client.get(f"file://{path}")
    assert secret.is_binary
    assert secret.encoding == "binary"
    assert secret.reveal_bytes() == b"\x00\xff\xfe\x01"
    with pytest.raises(keystead.NotText) as raised:
        secret.reveal()
    assert isinstance(raised.value, ValueError)
    assert "the value is binary, not text" in str(raised.value)
