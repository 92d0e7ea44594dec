"""Runs every case in conformance/cases.json, the file all keystead
languages share, so that Python resolves each reference as the others do.

Backends: `env`, `files`, `aws_secrets` and `aws_parameters` (the session's
moto server) always; `vault_kv` starts an OpenBao dev server on first use.
A case that needs any other backend fails. Set
KEYSTEAD_TEST_SKIP_BACKENDS to a comma-separated list (for example
``vault``) to skip the cases of the backends named there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import keystead

from backends import REPO_ROOT, free_port, stop, venv_tool, wait_until_answering

CASES_FILE = REPO_ROOT / "conformance" / "cases.json"
CASES = json.loads(CASES_FILE.read_text())["cases"]

# `given` key -> the backend it needs, as named in KEYSTEAD_TEST_SKIP_BACKENDS.
BACKENDS = {
    "env": "env",
    "files": "file",
    "aws_secrets": "aws",
    "aws_parameters": "aws",
    "vault_kv": "vault",
}
SKIPPED_BACKENDS = {
    name.strip() for name in os.environ.get("KEYSTEAD_TEST_SKIP_BACKENDS", "").split(",") if name.strip()
}
VAULT_ROOT_TOKEN = "keystead-test-root"


def expand(value: Any, placeholders: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in placeholders.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [expand(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {expand(key, placeholders): expand(item, placeholders) for key, item in value.items()}
    return value


@pytest.fixture(scope="session")
def openbao():
    """The address of an OpenBao dev server, started on first use."""
    port = free_port()
    process = subprocess.Popen(
        [
            venv_tool("bao"),
            "server",
            "-dev",
            f"-dev-root-token-id={VAULT_ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{address}/v1/sys/health", process, deadline_seconds=30)
        yield address
    finally:
        stop(process)


def vault_request(address: str, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{address}/v1/{path}",
        data=data,
        method=method,
        headers={"X-Vault-Token": VAULT_ROOT_TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def seed_aws_secrets(secretsmanager, secrets: dict[str, Any]) -> None:
    """Creates each secret: name -> text, or {"text" | "bytes_base64", "deleted"}."""
    for name, spec in secrets.items():
        if isinstance(spec, str):
            spec = {"text": spec}
        if "text" in spec:
            secretsmanager.create_secret(Name=name, SecretString=spec["text"])
        elif "bytes_base64" in spec:
            secretsmanager.create_secret(Name=name, SecretBinary=base64.b64decode(spec["bytes_base64"]))
        else:
            raise AssertionError(f"secret {name}: expected `text` or `bytes_base64`, got {sorted(spec)}")
        if spec.get("deleted"):
            secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7)


def seed_aws_parameters(ssm, parameters: dict[str, Any]) -> None:
    """Puts each parameter: name -> text (a String), or {"value", "type"}."""
    for name, spec in parameters.items():
        if isinstance(spec, str):
            spec = {"value": spec, "type": "String"}
        ssm.put_parameter(Name=name, Value=spec["value"], Type=spec.get("type", "String"))


def vault_entries(given: Any) -> list[dict[str, Any]]:
    """Normalizes `vault_kv`: a list of {mount, path, data, then?,
    delete_latest?}, or an object of MOUNT/PATH -> data or {data,
    delete_latest?}."""
    if isinstance(given, list):
        return given
    entries = []
    for location, spec in given.items():
        mount, _, path = location.partition("/")
        if not (isinstance(spec, dict) and "data" in spec):
            spec = {"data": spec}
        entries.append({"mount": mount, "path": path, **spec})
    return entries


def seed_vault(request, monkeypatch, given: Any) -> None:
    address = request.getfixturevalue("openbao")
    monkeypatch.setenv("VAULT_ADDR", address)
    monkeypatch.setenv("VAULT_TOKEN", VAULT_ROOT_TOKEN)
    for entry in vault_entries(given):
        mount, path = entry["mount"], entry["path"]
        for data in [entry["data"], *entry.get("then", [])]:
            vault_request(address, "POST", f"{mount}/data/{path}", {"data": data})
        if entry.get("delete_latest"):
            vault_request(address, "DELETE", f"{mount}/data/{path}")


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_conformance_case(case, request, monkeypatch, tmp_path: Path, prefix: str, secretsmanager, ssm):
    unknown = set(case["given"]) - set(BACKENDS)
    assert not unknown, f"case {case['name']} needs backends this runner does not know: {sorted(unknown)}"
    skipped = {BACKENDS[key] for key in case["given"]} & SKIPPED_BACKENDS
    if skipped:
        pytest.skip(f"KEYSTEAD_TEST_SKIP_BACKENDS leaves out {sorted(skipped)}")

    case = expand(case, {"dir": str(tmp_path), "prefix": prefix})
    given = case["given"]
    for name, value in given.get("env", {}).items():
        monkeypatch.setenv(name, value)
    for relative, text in given.get("files", {}).items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    seed_aws_secrets(secretsmanager, given.get("aws_secrets", {}))
    seed_aws_parameters(ssm, given.get("aws_parameters", {}))
    if "vault_kv" in given:
        seed_vault(request, monkeypatch, given["vault_kv"])

    expect = case["expect"]
    assert len(expect) == 1, f"case {case['name']} must expect exactly one of text, bytes_base64, error"
    with keystead.Client() as client:
        if "error" in expect:
            with pytest.raises(keystead.Error) as raised:
                client.get(case["reference"])
            assert raised.value.error_class == expect["error"], str(raised.value)
        elif "text" in expect:
            assert client.get(case["reference"]).reveal() == expect["text"]
        elif "bytes_base64" in expect:
            secret = client.get(case["reference"])
            assert secret.is_binary
            assert secret.reveal_bytes() == base64.b64decode(expect["bytes_base64"])
        else:
            pytest.fail(f"case {case['name']} has an unknown expectation: {sorted(expect)}")


def test_conformance_file_has_cases():
    assert len(CASES) >= 20
