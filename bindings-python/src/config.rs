//! Builds a core [`Config`] from the arguments of `Client(config,
//! **overrides)`. `config` is a path to a `keystead.toml`, a dict with the
//! same schema, or `None` for `KEYSTEAD_CONFIG` and the defaults. The
//! keyword overrides are top-level keys merged over it.
//!
//! Dicts travel to core as JSON ([`Config::from_json`]), so core checks
//! every key and value and names the wrong one.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value};

use keystead::config::CONFIG_ENV;
use keystead::{Config, Error, ErrorClass};

use crate::errors;

/// Loads the configuration for a new client.
pub(crate) fn load(
    py: Python<'_>,
    config: Option<&Bound<'_, PyAny>>,
    overrides: Option<&Bound<'_, PyDict>>,
) -> PyResult<Config> {
    let overrides = match overrides {
        Some(overrides) if !overrides.is_empty() => Some(dict_to_json(overrides, None)?),
        _ => None,
    };

    let loaded = match config {
        None => match std::env::var_os(CONFIG_ENV) {
            Some(path) if !path.is_empty() => from_file(&path.to_string_lossy(), overrides),
            _ => from_value(Value::Object(Map::new()), "the defaults", overrides),
        },
        Some(config) if is_path(config)? => from_file(&fspath(config)?, overrides),
        Some(config) => {
            let value = mapping_to_json(config, "config")?;
            from_value(value, "the config dict", overrides)
        }
    };
    loaded.map_err(|error| errors::to_py(py, &error))
}

fn from_file(path: &str, overrides: Option<Map<String, Value>>) -> Result<Config, Error> {
    // The file alone is checked first, so that a mistake in it is reported
    // with its file name and line.
    let config = Config::from_file(path)?;
    let Some(overrides) = overrides else {
        return Ok(config);
    };

    let text = std::fs::read_to_string(path).map_err(|error| {
        Error::new(
            ErrorClass::Config,
            format!("cannot read config file {path}: {error}"),
        )
    })?;
    let value: Value = toml::from_str(&text).map_err(|error| {
        Error::new(
            ErrorClass::Config,
            format!("invalid config in {path}: {error}"),
        )
    })?;
    from_value(value, path, Some(overrides))
}

fn from_value(
    mut value: Value,
    origin: &str,
    overrides: Option<Map<String, Value>>,
) -> Result<Config, Error> {
    let origin = match overrides {
        None => origin.to_owned(),
        Some(overrides) => {
            if let Value::Object(base) = &mut value {
                merge(base, overrides);
            }
            format!("{origin} with keyword overrides")
        }
    };
    Config::from_json(&value.to_string(), &origin)
}

/// Merges `overrides` into `base`: tables merge key by key, and any other
/// value (a list such as `secret`, a string, a number) replaces the old one.
fn merge(base: &mut Map<String, Value>, overrides: Map<String, Value>) {
    for (key, value) in overrides {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(table)), Value::Object(update)) => merge(table, update),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn is_path(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(value.is_instance_of::<PyString>() || value.hasattr("__fspath__")?)
}

fn fspath(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let os = value.py().import("os")?;
    os.getattr("fsdecode")?
        .call1((os.getattr("fspath")?.call1((value,))?,))?
        .extract()
}

fn mapping_to_json(value: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    let mapping = match value.cast::<PyDict>() {
        Ok(dict) => dict.clone(),
        Err(_) if is_mapping(value)? => PyDict::from_sequence(&value.call_method0("items")?)?,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
            "{path} must be a path to a keystead.toml, a dict with the same keys, or None; got {}",
            type_name(value)
        )))
        }
    };
    Ok(Value::Object(dict_to_json(&mapping, Some(path))?))
}

fn is_mapping(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    let mapping = value.py().import("collections.abc")?.getattr("Mapping")?;
    value.is_instance(&mapping)
}

/// Converts a dict; `path` names it in errors, and is `None` for the
/// keyword overrides, whose keys are named alone.
fn dict_to_json(dict: &Bound<'_, PyDict>, path: Option<&str>) -> PyResult<Map<String, Value>> {
    let mut object = Map::new();
    for (key, value) in dict.iter() {
        let Ok(key) = key.extract::<String>() else {
            return Err(PyTypeError::new_err(format!(
                "{}: keys must be str, got {}",
                path.unwrap_or("keyword arguments"),
                type_name(&key)
            )));
        };
        let child = match path {
            Some(path) => format!("{path}['{key}']"),
            None => key.clone(),
        };
        object.insert(key, to_json(&value, &child)?);
    }
    Ok(object)
}

/// Converts one config value. Besides JSON's types it accepts path-like
/// objects (as their path text) and `datetime.timedelta` (as a duration in
/// microseconds, such as `"1500000us"`).
fn to_json(value: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(number) = value.extract::<i64>() {
            return Ok(Value::from(number));
        }
        if let Ok(number) = value.extract::<u64>() {
            return Ok(Value::from(number));
        }
        return Err(PyValueError::new_err(format!(
            "{path}: the integer is out of range"
        )));
    }
    if let Ok(number) = value.cast::<PyFloat>() {
        return serde_json::Number::from_f64(number.value())
            .map(Value::Number)
            .ok_or_else(|| PyValueError::new_err(format!("{path}: the number must be finite")));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Value::String(text.to_cow()?.into_owned()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        return Ok(Value::Object(dict_to_json(dict, Some(path))?));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (index, item) in value.try_iter()?.enumerate() {
            items.push(to_json(&item?, &format!("{path}[{index}]"))?);
        }
        return Ok(Value::Array(items));
    }
    if value.hasattr("__fspath__")? {
        return Ok(Value::String(fspath(value)?));
    }
    if let Some(text) = timedelta_text(value, path)? {
        return Ok(Value::String(text));
    }
    if is_mapping(value)? {
        return mapping_to_json(value, path);
    }
    Err(PyTypeError::new_err(format!(
        "{path}: a config value must be str, int, float, bool, None, a dict, a list, a path or a \
         datetime.timedelta; got {}",
        type_name(value)
    )))
}

fn timedelta_text(value: &Bound<'_, PyAny>, path: &str) -> PyResult<Option<String>> {
    let timedelta = value.py().import("datetime")?.getattr("timedelta")?;
    if !value.is_instance(&timedelta)? {
        return Ok(None);
    }
    let days: i64 = value.getattr("days")?.extract()?;
    let seconds: i64 = value.getattr("seconds")?.extract()?;
    let microseconds: i64 = value.getattr("microseconds")?.extract()?;
    let total = (days * 86_400 + seconds) * 1_000_000 + microseconds;
    if total < 0 {
        return Err(PyValueError::new_err(format!(
            "{path}: a duration must not be negative"
        )));
    }
    Ok(Some(format!("{total}us")))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "an unknown type".to_owned())
}
