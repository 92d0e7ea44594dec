"""inject_secret and inject_fields."""

from __future__ import annotations

import asyncio
import json

import pytest

import keystead


@pytest.fixture
def db_secret(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_DB", json.dumps({"username": "app", "password": "pw-1", "port": 5432}))
    return "env://KEYSTEAD_PY_DB"


def test_inject_secret_reads_at_call_time(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_TOKEN_DECORATED", "first")

    @keystead.inject_secret("env://KEYSTEAD_PY_TOKEN_DECORATED", into="token", client=client)
    def call_api(path, token):
        return f"{path}:{token}"

    # Decorating read nothing.
    assert client.metrics()["backend_calls"] == 0
    assert call_api("/users") == "/users:first"
    monkeypatch.setenv("KEYSTEAD_PY_TOKEN_DECORATED", "rotated")
    client.refresh("env://KEYSTEAD_PY_TOKEN_DECORATED")
    assert call_api("/users") == "/users:rotated"
    assert call_api.__name__ == "call_api"


def test_inject_secret_on_methods(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_METHOD", "method-secret")

    class Repository:
        prefix = "repo"

        @keystead.inject_secret("env://KEYSTEAD_PY_METHOD", into="password", client=client)
        def connect(self, host, password):
            return (self.prefix, host, password)

        @keystead.inject_secret("env://KEYSTEAD_PY_METHOD", into="password", client=client)
        @classmethod
        def build(cls, password):
            return (cls.__name__, password)

        @keystead.inject_secret("env://KEYSTEAD_PY_METHOD", into="password", client=client)
        @staticmethod
        def static(password):
            return password

        @classmethod
        @keystead.inject_secret("env://KEYSTEAD_PY_METHOD", into="password", client=client)
        def build_inner(cls, password):
            return (cls.__name__, password)

    repository = Repository()
    assert repository.connect("db.local") == ("repo", "db.local", "method-secret")
    assert repository.connect(host="db.local") == ("repo", "db.local", "method-secret")
    assert Repository.build() == ("Repository", "method-secret")
    assert Repository.static() == "method-secret"
    assert Repository.build_inner() == ("Repository", "method-secret")


def test_caller_value_wins(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_OVERRIDE", "from-keystead")

    @keystead.inject_secret("env://KEYSTEAD_PY_OVERRIDE", into="password", client=client)
    def connect(host, password):
        return password

    assert connect("h", password="explicit") == "explicit"
    assert connect("h", "positional") == "positional"
    assert client.metrics()["backend_calls"] == 0
    assert connect("h") == "from-keystead"


def test_inject_secret_passes_secret_object(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_OBJECT", "object-value")

    @keystead.inject_secret("env://KEYSTEAD_PY_OBJECT", client=client, reveal=False)
    def use(secret):
        return secret

    secret = use()
    assert isinstance(secret, keystead.Secret)
    assert secret.reveal() == "object-value"


def test_inject_secret_with_kwargs_function(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_KWARGS", "kw")

    @keystead.inject_secret("env://KEYSTEAD_PY_KWARGS", into="api_key", client=client)
    def handler(**kwargs):
        return kwargs

    assert handler(other=1) == {"other": 1, "api_key": "kw"}


def test_inject_secret_uses_default_client(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_DEFAULT", "default-client")

    @keystead.inject_secret("env://KEYSTEAD_PY_DEFAULT")
    def read(secret):
        return secret

    assert read() == "default-client"
    keystead.default_client().close()


def test_inject_secret_client_factory(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_FACTORY", "factory")
    calls = []

    def factory():
        calls.append(1)
        return client

    @keystead.inject_secret("env://KEYSTEAD_PY_FACTORY", client=factory)
    def read(secret):
        return secret

    assert read() == "factory"
    assert read() == "factory"
    assert len(calls) == 2


def test_inject_secret_errors_propagate(client):
    @keystead.inject_secret("env://KEYSTEAD_PY_DECORATED_MISSING", client=client)
    def read(secret):
        return secret

    with pytest.raises(keystead.NotFound):
        read()


def test_decoration_errors(client):
    with pytest.raises(TypeError, match="no parameter named 'password'"):

        @keystead.inject_secret("env://A", into="password", client=client)
        def no_param(token):
            pass

    with pytest.raises(TypeError, match="cannot be passed by keyword"):

        @keystead.inject_secret("env://A", into="password", client=client)
        def positional_only(password, /):
            pass

    with pytest.raises(TypeError, match="reference must be a str"):
        keystead.inject_secret(123)

    with pytest.raises(TypeError, match="client must be"):

        @keystead.inject_secret("env://A", client="not a client")
        def bad_client(secret):
            pass


def test_async_client_needs_coroutine_function():
    async_client = keystead.AsyncClient()
    try:
        with pytest.raises(TypeError, match="AsyncClient"):

            @keystead.inject_secret("env://A", client=async_client)
            def sync_function(secret):
                pass

    finally:
        asyncio.run(async_client.close())


async def test_inject_secret_async_function(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC_DECORATED", "async-secret")
    async with keystead.AsyncClient() as async_client:

        @keystead.inject_secret("env://KEYSTEAD_PY_ASYNC_DECORATED", into="token", client=async_client)
        async def handler(request, token):
            await asyncio.sleep(0)
            return (request, token)

        assert await handler("r") == ("r", "async-secret")


async def test_inject_secret_async_function_with_blocking_client(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_ASYNC_BLOCKING", "blocking-client")

    @keystead.inject_secret("env://KEYSTEAD_PY_ASYNC_BLOCKING", client=client)
    async def handler(secret):
        return secret

    assert await handler() == "blocking-client"
    assert await handler() == "blocking-client"


def test_inject_fields_list_and_mapping(client, db_secret):
    @keystead.inject_fields(db_secret, ["username", "password"], client=client)
    def connect(host, username, password):
        return (host, username, password)

    assert connect("db") == ("db", "app", "pw-1")

    @keystead.inject_fields(db_secret, {"user": "username", "db_port": "port"}, client=client)
    def connect_mapped(user, db_port):
        return (user, db_port)

    assert connect_mapped() == ("app", "5432")
    assert connect_mapped(user="override") == ("override", "5432")


def test_inject_fields_reads_one_version(client, db_secret, monkeypatch):
    @keystead.inject_fields(db_secret, ["username", "password"], client=client)
    def connect(username, password):
        return (username, password)

    assert connect() == ("app", "pw-1")
    monkeypatch.setenv("KEYSTEAD_PY_DB", json.dumps({"username": "app2", "password": "pw-2"}))
    client.refresh(db_secret)
    assert connect() == ("app2", "pw-2")
    assert client.metrics()["backend_calls"] == 2


def test_inject_fields_missing_field(client, db_secret):
    @keystead.inject_fields(db_secret, ["username", "token"], client=client)
    def connect(username, token):
        return token

    with pytest.raises(keystead.FieldNotFound) as raised:
        connect()
    message = str(raised.value)
    assert "'token'" in message
    assert "connect()" in message
    assert raised.value.reference == db_secret
    assert isinstance(raised.value.__cause__, keystead.FieldNotFound)


def test_inject_fields_bad_json(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_NOT_JSON", "plain-password")

    @keystead.inject_fields("env://KEYSTEAD_PY_NOT_JSON", ["password"], client=client)
    def connect(password):
        return password

    with pytest.raises(keystead.InvalidJson) as raised:
        connect()
    assert "inject_fields could not fill parameter 'password'" in str(raised.value)
    assert "plain-password" not in str(raised.value)


def test_inject_fields_argument_errors(client):
    with pytest.raises(ValueError, match="at least one"):
        keystead.inject_fields("env://A", [])
    with pytest.raises(TypeError, match="not a Python identifier"):
        keystead.inject_fields("env://A", ["not-an-identifier"])
    with pytest.raises(TypeError, match="non-empty str"):
        keystead.inject_fields("env://A", {"user": ""})
    with pytest.raises(TypeError, match="fields must be"):
        keystead.inject_fields("env://A", 5)


def test_inject_fields_single_name(client, db_secret):
    @keystead.inject_fields(db_secret, "password", client=client)
    def connect(password):
        return password

    assert connect() == "pw-1"
