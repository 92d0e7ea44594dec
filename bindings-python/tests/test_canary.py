"""A secret value that is never revealed must not reach any text keystead
or Python produces: repr, str, formatting, JSON errors, exceptions,
logging, tracebacks or captured output."""

from __future__ import annotations

import base64
import json
import logging
import pickle
import pprint
import threading
import traceback
import tracemalloc

import pytest

import keystead

CANARY = "canary-py-7c1e9a-do-not-print"


def assert_clean(text: str, where: str) -> None:
    assert CANARY not in text, f"the canary leaked into {where}: {text!r}"
    encoded = base64.b64encode(CANARY.encode()).decode()
    assert encoded not in text, f"the base64 canary leaked into {where}"


def exception_texts(error: BaseException) -> list[str]:
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format()),
    ]


@pytest.fixture
def canary_sources(monkeypatch, tmp_path, secretsmanager, prefix):
    monkeypatch.setenv("KEYSTEAD_PY_CANARY", CANARY)
    monkeypatch.setenv("KEYSTEAD_PY_CANARY_JSON", json.dumps({"password": CANARY, "nested": {"token": CANARY}}))
    (tmp_path / "canary.txt").write_text(CANARY)
    (tmp_path / "canary.bin").write_bytes(b"\xff\xfe" + CANARY.encode())
    secretsmanager.create_secret(Name=f"{prefix}/canary", SecretString=CANARY)
    secretsmanager.create_secret(Name=f"{prefix}/canary-json", SecretString=json.dumps({"password": CANARY}))
    return {
        "env": "env://KEYSTEAD_PY_CANARY",
        "env_json": "env://KEYSTEAD_PY_CANARY_JSON",
        "file": f"file://{tmp_path}/canary.txt",
        "binary": f"file://{tmp_path}/canary.bin",
        "aws": f"aws-sm://{prefix}/canary",
        "aws_json": f"aws-sm://{prefix}/canary-json",
        "aws_field": f"aws-sm://{prefix}/canary-json#password",
    }


def test_secret_text_forms_are_clean(client, canary_sources):
    for kind, reference in canary_sources.items():
        secret = client.get(reference)
        texts = {
            "repr": repr(secret),
            "str": str(secret),
            "format": f"{secret} {secret!r} {secret:>40}",
            "percent": "%s %r" % (secret, secret),
            "pprint": pprint.pformat({"secret": secret, "list": [secret]}),
            "container repr": repr([secret, (secret,), {"k": secret}]),
        }
        for where, text in texts.items():
            assert_clean(text, f"{where} of {kind}")


def test_json_and_pickle_errors_are_clean(client, canary_sources):
    secret = client.get(canary_sources["env"])
    with pytest.raises(TypeError) as raised:
        json.dumps({"password": secret})
    for text in exception_texts(raised.value):
        assert_clean(text, "json.dumps error")
    with pytest.raises(TypeError) as raised:
        pickle.dumps(secret)
    for text in exception_texts(raised.value):
        assert_clean(text, "pickle error")


def test_errors_about_canary_values_are_clean(client, canary_sources):
    failures = []
    for reference in (
        canary_sources["env"] + "#field",
        canary_sources["aws"] + "#field",
        canary_sources["env_json"] + "#missing",
        canary_sources["env_json"] + "#nested.absent",
        canary_sources["aws_json"] + "#password.deeper",
    ):
        with pytest.raises(keystead.Error) as raised:
            client.get(reference)
        failures.append(raised.value)
    with pytest.raises(keystead.NotText) as raised:
        client.get(canary_sources["binary"]).reveal()
    failures.append(raised.value)
    with pytest.raises(keystead.Error) as raised:
        client.get(canary_sources["binary"]).field("password")
    failures.append(raised.value)

    @keystead.inject_fields(canary_sources["env"], ["password"], client=client)
    def connect(password):
        return password

    with pytest.raises(keystead.InvalidJson) as raised:
        connect()
    failures.append(raised.value)

    for error in failures:
        for text in exception_texts(error):
            assert_clean(text, f"{type(error).__name__} text")


def test_tracebacks_with_secret_locals_are_clean(client, canary_sources):
    def handler():
        secret = client.get(canary_sources["aws_field"])
        field = secret  # a second local holding the Secret
        raise RuntimeError(f"handler failed with {secret} and {field!r}")

    with pytest.raises(RuntimeError) as raised:
        handler()
    for text in exception_texts(raised.value):
        assert_clean(text, "traceback")


def test_logging_and_output_are_clean(client, canary_sources, secretsmanager, prefix, caplog, capfd):
    logger = logging.getLogger("keystead.canary-test")
    delivered = threading.Event()

    def failing_callback(event):
        delivered.set()
        raise ValueError(f"callback saw {event!r} with {event.secret!r}")

    # The test seeds moto with boto3, whose debug logs echo request bodies;
    # only keystead's and Python's own output is under test.
    for noisy in ("botocore", "boto3", "urllib3"):
        caplog.set_level(logging.WARNING, logger=noisy)
    with caplog.at_level(logging.DEBUG):
        for reference in canary_sources.values():
            secret = client.get(reference)
            logger.info("read %s: %s %r", reference, secret, secret)
            logger.debug("as dict %s", {"secret": secret})
        client.subscribe(canary_sources["aws"], failing_callback)
        secretsmanager.put_secret_value(SecretId=f"{prefix}/canary", SecretString=CANARY + "-v2")
        client.refresh(canary_sources["aws"])
        assert delivered.wait(10)
        for _ in range(100):
            if any(record.name == "keystead" for record in caplog.records):
                break
            threading.Event().wait(0.02)
        logger.info("metrics %s client %r", client.metrics(), client)

    assert any(record.name == "keystead" for record in caplog.records)
    assert_clean(caplog.text, "logging output")
    captured = capfd.readouterr()
    assert_clean(captured.out, "stdout")
    assert_clean(captured.err, "stderr")


def test_warm_get_creates_no_python_copy(client, monkeypatch):
    # A value far larger than anything a warm read allocates: a Python str
    # or bytes copy of it would show up as a 256 KiB allocation.
    large = "s" * (256 * 1024)
    monkeypatch.setenv("KEYSTEAD_PY_LARGE", large)
    client.get("env://KEYSTEAD_PY_LARGE")

    tracemalloc.start()
    try:
        kept = [client.get("env://KEYSTEAD_PY_LARGE") for _ in range(50)]
        kept += [client.get_cached("env://KEYSTEAD_PY_LARGE") for _ in range(50)]
        _, warm_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        revealed = kept[0].reveal()
        _, reveal_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert warm_peak < 64 * 1024, f"warm reads allocated {warm_peak} bytes"
    assert reveal_peak >= len(large)
    assert revealed == large
