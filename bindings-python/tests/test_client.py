"""keystead.Client: configuration, reads, cache control, metrics and close."""

from __future__ import annotations

import datetime
import os
import pathlib

import pytest

import keystead


def test_get_reads_env(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_TOKEN", "from-env")
    secret = client.get("env://KEYSTEAD_PY_TOKEN")
    assert secret.reveal() == "from-env"
    assert secret.provider == "env"
    assert secret.reference == "env://KEYSTEAD_PY_TOKEN"


def test_warm_get_is_a_cache_hit(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_WARM", "one")
    client.get("env://KEYSTEAD_PY_WARM")
    monkeypatch.setenv("KEYSTEAD_PY_WARM", "two")
    assert client.get("env://KEYSTEAD_PY_WARM").reveal() == "one"
    metrics = client.metrics()
    assert metrics["misses"] == 1
    assert metrics["hits"] == 1
    assert metrics["backend_calls"] == 1


def test_get_cached_does_not_load(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_CACHED", "value")
    assert client.get_cached("env://KEYSTEAD_PY_CACHED") is None
    client.get("env://KEYSTEAD_PY_CACHED")
    cached = client.get_cached("env://KEYSTEAD_PY_CACHED")
    assert cached is not None
    assert cached.reveal() == "value"
    assert client.metrics()["backend_calls"] == 1


def test_refresh_loads_new_value(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_REFRESH", "old")
    client.get("env://KEYSTEAD_PY_REFRESH")
    monkeypatch.setenv("KEYSTEAD_PY_REFRESH", "new")
    assert client.refresh("env://KEYSTEAD_PY_REFRESH").reveal() == "new"
    assert client.get("env://KEYSTEAD_PY_REFRESH").reveal() == "new"


def test_invalidate_drops_value(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_INVALIDATE", "first")
    assert client.invalidate("env://KEYSTEAD_PY_INVALIDATE") is False
    client.get("env://KEYSTEAD_PY_INVALIDATE")
    monkeypatch.setenv("KEYSTEAD_PY_INVALIDATE", "second")
    assert client.invalidate("env://KEYSTEAD_PY_INVALIDATE") is True
    assert client.get_cached("env://KEYSTEAD_PY_INVALIDATE") is None
    assert client.get("env://KEYSTEAD_PY_INVALIDATE").reveal() == "second"


def test_invalidate_rejects_bad_reference(client):
    with pytest.raises(keystead.InvalidReference):
        client.invalidate("not a reference")


def test_prefetch_reports_each_reference(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_PREFETCH_A", "a")
    monkeypatch.setenv("KEYSTEAD_PY_PREFETCH_B", "b")
    references = ["env://KEYSTEAD_PY_PREFETCH_A", "env://KEYSTEAD_PY_PREFETCH_MISSING", "nonsense", "env://KEYSTEAD_PY_PREFETCH_B"]
    outcomes = client.prefetch(references)
    assert list(outcomes) == references
    assert outcomes["env://KEYSTEAD_PY_PREFETCH_A"] is None
    assert outcomes["env://KEYSTEAD_PY_PREFETCH_B"] is None
    assert isinstance(outcomes["env://KEYSTEAD_PY_PREFETCH_MISSING"], keystead.NotFound)
    assert isinstance(outcomes["nonsense"], keystead.InvalidReference)
    assert client.get_cached("env://KEYSTEAD_PY_PREFETCH_A").reveal() == "a"


def test_prefetch_rejects_a_bare_string(client):
    with pytest.raises(TypeError):
        client.prefetch("env://A")


def test_metrics_has_every_counter(client, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_METRICS", "x")
    client.get("env://KEYSTEAD_PY_METRICS")
    with pytest.raises(keystead.NotFound):
        client.get("env://KEYSTEAD_PY_METRICS_MISSING")
    metrics = client.metrics()
    assert set(metrics) == {
        "hits",
        "misses",
        "refreshes",
        "stale_serves",
        "backend_calls",
        "rotations",
        "evictions",
        "entries",
        "errors",
        "load_latency_buckets",
        "load_latency_sum",
        "load_count",
    }
    assert metrics["errors"] == {"not-found": 1}
    assert metrics["load_count"] == 2
    assert sum(metrics["load_latency_buckets"]) == 2
    assert isinstance(metrics["load_latency_sum"], float)
    assert metrics["entries"] == 2


def test_close_wipes_and_rejects_calls(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_CLOSE", "x")
    client = keystead.Client()
    secret = client.get("env://KEYSTEAD_PY_CLOSE")
    client.close()
    assert client.closed
    assert client.get_cached("env://KEYSTEAD_PY_CLOSE") is None
    with pytest.raises(keystead.ClientClosed) as raised:
        client.get("env://KEYSTEAD_PY_CLOSE")
    assert raised.value.reference == "env://KEYSTEAD_PY_CLOSE"
    assert raised.value.error_class == "closed"
    for call in (client.metrics, lambda: client.prefetch(["env://X"]), lambda: client.invalidate("env://X")):
        with pytest.raises(keystead.ClientClosed):
            call()
    # A secret handed out before the close stays readable.
    assert secret.reveal() == "x"
    client.close()


def test_context_manager_closes():
    with keystead.Client() as client:
        assert not client.closed
    assert client.closed
    assert repr(client) == "<keystead.Client closed>"


def test_timeout_must_be_valid(client):
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            client.get("env://HOME", timeout=bad)


def test_timeout_is_checked_for_cached_values(client):
    client.get("env://HOME")
    assert client.get_cached("env://HOME") is not None
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout"):
            client.get("env://HOME", timeout=bad)


def test_timeout_raises_unavailable(silent_client):
    with pytest.raises(keystead.Unavailable) as raised:
        silent_client.get("aws-sm://never/answered", timeout=0.3)
    assert raised.value.reference == "aws-sm://never/answered"
    assert "did not finish within" in str(raised.value)


# Configuration


def test_config_dict_sets_ttl(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_TTL", "one")
    with keystead.Client({"cache": {"ttl": "0s"}}) as client:
        client.get("env://KEYSTEAD_PY_TTL")
        monkeypatch.setenv("KEYSTEAD_PY_TTL", "two")
        assert client.get("env://KEYSTEAD_PY_TTL").reveal() == "two"


def test_config_file_path(tmp_path, monkeypatch):
    config = tmp_path / "keystead.toml"
    config.write_text('[cache]\nttl = "0s"\n')
    monkeypatch.setenv("KEYSTEAD_PY_FILE_TTL", "one")
    for source in (str(config), config):
        with keystead.Client(source) as client:
            client.get("env://KEYSTEAD_PY_FILE_TTL")
            monkeypatch.setenv("KEYSTEAD_PY_FILE_TTL", "two")
            assert client.get("env://KEYSTEAD_PY_FILE_TTL").reveal() == "two"
            monkeypatch.setenv("KEYSTEAD_PY_FILE_TTL", "one")


def test_config_from_environment_variable(tmp_path, monkeypatch):
    config = tmp_path / "keystead.toml"
    config.write_text("[cache]\nmax_entries = 0\n")
    monkeypatch.setenv("KEYSTEAD_CONFIG", str(config))
    with pytest.raises(keystead.ConfigError, match="max_entries"):
        keystead.Client()


def test_config_file_error_names_file_and_line(tmp_path):
    config = tmp_path / "keystead.toml"
    config.write_text('[cache]\nttl = "1s"\nmax_entrys = 5\n')
    with pytest.raises(keystead.ConfigError) as raised:
        keystead.Client(config)
    message = str(raised.value)
    assert "max_entrys" in message
    assert str(config) in message
    assert "line 3" in message
    assert raised.value.error_class == "config"
    assert isinstance(raised.value, ValueError)


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "absent.toml"
    with pytest.raises(keystead.ConfigError, match="absent.toml"):
        keystead.Client(missing)


def test_unknown_dict_key_is_named():
    with pytest.raises(keystead.ConfigError, match="tll"):
        keystead.Client({"cache": {"tll": "5s"}})


def test_overrides_merge_into_file(tmp_path, monkeypatch):
    config = tmp_path / "keystead.toml"
    config.write_text('[cache]\nttl = "1h"\nmax_entries = 0\n')
    # The file alone is invalid (max_entries = 0), so it is reported first.
    with pytest.raises(keystead.ConfigError, match="max_entries"):
        keystead.Client(config, cache={"max_entries": 10})

    config.write_text('[cache]\nttl = "1h"\nmax_entries = 10\n')
    monkeypatch.setenv("KEYSTEAD_PY_MERGE", "one")
    with keystead.Client(config, cache={"ttl": "0s"}) as client:
        client.get("env://KEYSTEAD_PY_MERGE")
        monkeypatch.setenv("KEYSTEAD_PY_MERGE", "two")
        assert client.get("env://KEYSTEAD_PY_MERGE").reveal() == "two"


def test_override_error_names_origin(tmp_path):
    config = tmp_path / "keystead.toml"
    config.write_text('[cache]\nttl = "1h"\n')
    with pytest.raises(keystead.ConfigError) as raised:
        keystead.Client(config, cache={"max_entries": 0})
    assert "keyword overrides" in str(raised.value)
    with pytest.raises(keystead.ConfigError, match="keyword overrides"):
        keystead.Client(cache={"nonsense": 1})


def test_overrides_without_config(monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_KW", "one")
    with keystead.Client(cache={"ttl": datetime.timedelta(0)}) as client:
        client.get("env://KEYSTEAD_PY_KW")
        monkeypatch.setenv("KEYSTEAD_PY_KW", "two")
        assert client.get("env://KEYSTEAD_PY_KW").reveal() == "two"


def test_path_values_become_text(tmp_path, monkeypatch):
    monkeypatch.setenv("KEYSTEAD_PY_PATH_VALUE", "v")
    with keystead.Client(aws={"ca_bundle": pathlib.Path(tmp_path) / "ca.pem"}) as client:
        assert client.get("env://KEYSTEAD_PY_PATH_VALUE").reveal() == "v"
    with pytest.raises(keystead.ConfigError, match="endpoint"):
        keystead.Client(aws={"endpoint_url": pathlib.PurePosixPath("not a url")})


def test_negative_timedelta_is_rejected():
    with pytest.raises(ValueError, match=r"cache\['ttl'\]: a duration must not be negative"):
        keystead.Client(cache={"ttl": datetime.timedelta(seconds=-1)})


def test_config_type_errors_name_the_key():
    with pytest.raises(TypeError, match=r"config\[.cache.\]\[.ttl.\]"):
        keystead.Client({"cache": {"ttl": {1, 2}}})
    with pytest.raises(TypeError, match="keys must be str"):
        keystead.Client({1: "x"})
    with pytest.raises(TypeError, match="path to a keystead.toml"):
        keystead.Client(42)


def test_config_accepts_any_mapping(monkeypatch):
    import types

    monkeypatch.setenv("KEYSTEAD_PY_MAPPING", "v")
    with keystead.Client(types.MappingProxyType({"cache": {"ttl": "1m"}})) as client:
        assert client.get("env://KEYSTEAD_PY_MAPPING").reveal() == "v"


def test_subclass_and_repr():
    with keystead.Client() as client:
        assert isinstance(client, keystead.Client)
        assert repr(client) == "<keystead.Client open>"


def test_pickling_client_is_refused():
    import pickle

    with keystead.Client() as client, pytest.raises(TypeError):
        pickle.dumps(client)


def test_default_client_is_shared_and_recreated():
    first = keystead.default_client()
    assert keystead.default_client() is first
    first.close()
    second = keystead.default_client()
    assert second is not first
    assert not second.closed


def test_public_names_exist():
    for name in keystead.__all__:
        assert getattr(keystead, name) is not None
    with pytest.raises(AttributeError):
        keystead.no_such_name  # noqa: B018
    assert keystead.__version__ == "0.1.0"


def test_package_ships_types():
    package = pathlib.Path(keystead.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_native.pyi").exists()


def test_stub_lists_every_native_method():
    stub = (pathlib.Path(keystead.__file__).parent / "_native.pyi").read_text()
    from keystead import _native

    for cls in (_native.Client, _native.Secret, _native.Subscription, _native.RotationEvent):
        public = [name for name in vars(cls) if not name.startswith("__")]
        for name in public:
            assert f"def {name}(" in stub, f"{cls.__name__}.{name} is missing from _native.pyi"


def test_env_isolated_from_user_config():
    assert os.environ["AWS_CONFIG_FILE"].startswith("/nonexistent/")
