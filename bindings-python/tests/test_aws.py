"""AWS Secrets Manager and SSM Parameter Store through the session's moto
server, plus rotation callbacks."""

from __future__ import annotations

import json
import threading

import pytest

import keystead


def native_thread_name() -> str:
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
        return comm.read().strip()


def test_secret_string_and_metadata(client, secretsmanager, prefix):
    name = f"{prefix}/db"
    created = secretsmanager.create_secret(Name=name, SecretString=json.dumps({"user": "app", "password": "pw-1"}))
    secret = client.get(f"aws-sm://{name}")
    assert json.loads(secret.reveal()) == {"user": "app", "password": "pw-1"}
    assert secret.provider == "aws-sm"
    assert secret.name == name
    assert secret.arn == created["ARN"]
    assert secret.version_id == created["VersionId"]
    assert secret.version == created["VersionId"]
    assert "AWSCURRENT" in secret.stages
    assert secret.created_at is not None


def test_field_of_secret(client, secretsmanager, prefix):
    name = f"{prefix}/db"
    secretsmanager.create_secret(Name=name, SecretString=json.dumps({"user": "app", "password": "pw-1"}))
    assert client.get(f"aws-sm://{name}#password").reveal() == "pw-1"
    with pytest.raises(keystead.FieldNotFound):
        client.get(f"aws-sm://{name}#missing")


def test_binary_secret(client, secretsmanager, prefix):
    name = f"{prefix}/bin"
    secretsmanager.create_secret(Name=name, SecretBinary=b"\x00\x01\xfe\xff")
    secret = client.get(f"aws-sm://{name}")
    assert secret.is_binary
    assert secret.reveal_bytes() == b"\x00\x01\xfe\xff"
    with pytest.raises(keystead.NotText):
        secret.reveal()


def test_missing_secret_is_not_found(client, prefix):
    with pytest.raises(keystead.NotFound) as raised:
        client.get(f"aws-sm://{prefix}/absent")
    assert raised.value.reference == f"aws-sm://{prefix}/absent"


def test_deleted_secret(client, secretsmanager, prefix):
    name = f"{prefix}/deleted"
    secretsmanager.create_secret(Name=name, SecretString="gone")
    secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with pytest.raises(keystead.SecretDeleted) as raised:
        client.get(f"aws-sm://{name}")
    assert raised.value.error_class == "secret-deleted"


def test_ssm_parameter(client, ssm, prefix):
    name = f"/{prefix}/param"
    ssm.put_parameter(Name=name, Value="p-1", Type="SecureString")
    ssm.put_parameter(Name=name, Value="p-2", Type="SecureString", Overwrite=True)
    secret = client.get(f"aws-ssm://{name}")
    assert secret.reveal() == "p-2"
    assert secret.provider == "aws-ssm"
    assert secret.version_number == 2
    assert secret.version == "2"


def test_prefetch_uses_aws(client, secretsmanager, prefix):
    names = [f"{prefix}/batch-{index}" for index in range(3)]
    for index, name in enumerate(names):
        secretsmanager.create_secret(Name=name, SecretString=f"value-{index}")
    references = [f"aws-sm://{name}" for name in names]
    outcomes = client.prefetch(references, timeout=30)
    assert outcomes == dict.fromkeys(references)
    assert [client.get_cached(reference).reveal() for reference in references] == ["value-0", "value-1", "value-2"]


def test_refresh_sees_new_version(client, secretsmanager, prefix):
    name = f"{prefix}/rotating"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    first = client.get(f"aws-sm://{name}")
    secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
    assert client.get(f"aws-sm://{name}").reveal() == "v1"
    refreshed = client.refresh(f"aws-sm://{name}")
    assert refreshed.reveal() == "v2"
    assert refreshed.version_id != first.version_id
    assert first.reveal() == "v1"


def test_subscribe_runs_callback_on_worker_thread(client, secretsmanager, prefix):
    name = f"{prefix}/subscribed"
    secretsmanager.create_secret(Name=name, SecretString=json.dumps({"password": "v1"}))
    reference = f"aws-sm://{name}#password"
    client.get(reference)

    delivered = threading.Event()
    events = []

    def on_rotation(event):
        events.append((event.reference, event.secret.reveal(), event.error, native_thread_name(), threading.get_ident()))
        delivered.set()

    subscription = client.subscribe(reference, on_rotation)
    assert subscription.active
    assert subscription.reference == reference
    secretsmanager.put_secret_value(SecretId=name, SecretString=json.dumps({"password": "v2"}))
    client.refresh(reference)
    assert delivered.wait(10)
    assert len(events) == 1
    event_reference, value, error, thread_name, thread_id = events[0]
    assert event_reference == reference
    assert value == "v2"
    assert error is None
    assert thread_name == "keystead-worker"
    assert thread_id != threading.get_ident()
    assert client.metrics()["rotations"] == 1

    subscription.cancel()
    assert not subscription.active
    subscription.cancel()
    secretsmanager.put_secret_value(SecretId=name, SecretString=json.dumps({"password": "v3"}))
    client.refresh(reference)
    assert len(events) == 1


def test_rotation_event_carries_field_error(client, secretsmanager, prefix):
    name = f"{prefix}/field-gone"
    secretsmanager.create_secret(Name=name, SecretString=json.dumps({"password": "v1"}))
    reference = f"aws-sm://{name}#password"
    client.get(reference)
    delivered = threading.Event()
    events = []

    def on_rotation(event):
        events.append(event)
        delivered.set()

    with client.subscribe(reference, on_rotation):
        secretsmanager.put_secret_value(SecretId=name, SecretString=json.dumps({"user": "only"}))
        with pytest.raises(keystead.FieldNotFound):
            client.refresh(reference)
        assert delivered.wait(10)
    assert events[0].secret is None
    assert isinstance(events[0].error, keystead.FieldNotFound)
    assert "RotationEvent" in repr(events[0])


def test_callback_exception_is_logged(client, secretsmanager, prefix, caplog):
    name = f"{prefix}/raising"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    client.get(reference)
    called = threading.Event()

    def failing(event):
        called.set()
        raise RuntimeError("callback failed on purpose")

    with caplog.at_level("ERROR", logger="keystead"):
        client.subscribe(reference, failing)
        secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
        client.refresh(reference)
        assert called.wait(10)
        for _ in range(100):
            if caplog.records:
                break
            threading.Event().wait(0.02)
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.name == "keystead"
    assert reference in record.getMessage()
    assert "callback failed on purpose" in caplog.text


def test_subscription_outlives_its_object(client, secretsmanager, prefix):
    name = f"{prefix}/kept"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    client.get(reference)
    delivered = threading.Event()
    client.subscribe(reference, lambda event: delivered.set())
    secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
    client.refresh(reference)
    assert delivered.wait(10)


def test_close_ends_subscriptions(secretsmanager, prefix):
    name = f"{prefix}/closing"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    client = keystead.Client()
    subscription = client.subscribe(f"aws-sm://{name}", lambda event: None)
    client.close()
    assert not subscription.active
    subscription.cancel()


def test_callback_may_call_the_client(client, secretsmanager, monkeypatch, prefix):
    name = f"{prefix}/reentrant"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    monkeypatch.setenv("KEYSTEAD_PY_REENTRANT", "other")
    client.get(reference)
    results = []
    delivered = threading.Event()

    def on_rotation(event):
        # A miss, a refresh and an invalidate, all from a runtime thread.
        results.append(client.get("env://KEYSTEAD_PY_REENTRANT").reveal())
        results.append(client.refresh(reference).reveal())
        results.append(client.invalidate("env://KEYSTEAD_PY_REENTRANT"))
        delivered.set()

    client.subscribe(reference, on_rotation)
    secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
    client.refresh(reference)
    assert delivered.wait(10)
    assert results == ["other", "v2", True]


def test_subscribe_rejects_non_callable(client):
    with pytest.raises(TypeError, match="callable"):
        client.subscribe("env://HOME", "not callable")


@pytest.mark.slow
def test_background_refresh_delivers_rotation(secretsmanager, prefix):
    name = f"{prefix}/background"
    secretsmanager.create_secret(Name=name, SecretString="v1")
    reference = f"aws-sm://{name}"
    delivered = threading.Event()
    values = []

    def on_rotation(event):
        values.append(event.secret.reveal())
        delivered.set()

    with keystead.Client(cache={"ttl": "1s"}) as client:
        client.get(reference)
        client.subscribe(reference, on_rotation)
        secretsmanager.put_secret_value(SecretId=name, SecretString="v2")
        # Refresh starts between 75 % and 90 % of the one-second TTL.
        assert delivered.wait(10)
    assert values[0] == "v2"
