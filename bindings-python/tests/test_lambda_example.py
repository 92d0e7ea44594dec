"""The Lambda example in examples/python-lambda, invoked against moto."""

from __future__ import annotations

import importlib.util
import json

import pytest

from backends import REPO_ROOT

HANDLER_PATH = REPO_ROOT / "examples" / "python-lambda" / "handler.py"


@pytest.fixture
def lambda_module(monkeypatch, secretsmanager, prefix):
    secretsmanager.create_secret(Name=f"{prefix}/api-key", SecretString="key-123")
    secretsmanager.create_secret(
        Name=f"{prefix}/db", SecretString=json.dumps({"username": "lambda-app", "password": "lambda-pw"})
    )
    monkeypatch.setenv("API_KEY_REF", f"aws-sm://{prefix}/api-key")
    monkeypatch.setenv("DB_SECRET_REF", f"aws-sm://{prefix}/db")
    spec = importlib.util.spec_from_file_location("lambda_handler_example", HANDLER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    module.client.close()


def test_handler_accepts_right_key(lambda_module):
    response = lambda_module.handler({"headers": {"X-Api-Key": "key-123"}}, None)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["connection"] == {"user": "lambda-app", "password_length": len("lambda-pw")}
    assert body["api_key_version"]
    assert "lambda-pw" not in response["body"]
    assert "key-123" not in response["body"]


def test_handler_rejects_wrong_key(lambda_module):
    response = lambda_module.handler({"headers": {"x-api-key": "wrong"}}, None)
    assert response["statusCode"] == 401
    response = lambda_module.handler({}, None)
    assert response["statusCode"] == 401


def test_warm_invocations_hit_the_cache(lambda_module):
    event = {"headers": {"x-api-key": "key-123"}}
    lambda_module.handler(event, None)
    calls_after_first = lambda_module.client.metrics()["backend_calls"]
    for _ in range(5):
        assert lambda_module.handler(event, None)["statusCode"] == 200
    assert calls_after_first == 2
    assert lambda_module.client.metrics()["backend_calls"] == 2
