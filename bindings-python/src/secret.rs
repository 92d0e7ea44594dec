//! `keystead.Secret`: a Python handle to a core [`keystead::Secret`].
//!
//! The object keeps the Rust value, whose bytes are wiped when the last
//! holder drops it. No Python `str` or `bytes` of the value exists until
//! `reveal()` or `reveal_bytes()` creates one.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};

use keystead::Encoding;

use crate::errors;

/// A secret value and its metadata. `repr()` and `str()` never show the
/// value; call `reveal()` or `reveal_bytes()` for it. Pickling raises
/// `TypeError`, so that a value cannot leak into a cache, a queue or a log
/// by accident.
#[pyclass(frozen, module = "keystead", name = "Secret")]
pub(crate) struct Secret {
    inner: keystead::Secret,
}

impl Secret {
    pub(crate) fn new(inner: keystead::Secret) -> Secret {
        Secret { inner }
    }
}

#[pymethods]
impl Secret {
    /// Returns the value as a new `str`.
    ///
    /// Raises `keystead.NotText` when the value is binary.
    fn reveal<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        match self.inner.expose_str() {
            Ok(text) => Ok(PyString::new(py, text)),
            Err(error) => Err(errors::to_py(py, &error)),
        }
    }

    /// Returns the value's exact bytes, for text and binary values alike.
    fn reveal_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.expose_bytes())
    }

    /// Selects a field of a JSON value by dot path (`"db.port"`); a key
    /// containing a dot is written with `%2E`. String fields give their
    /// text, other JSON values their compact JSON text.
    ///
    /// Raises `keystead.InvalidJson` when the value is not a JSON object or
    /// array, `keystead.FieldNotFound` when the path is missing or `null`,
    /// and `keystead.InvalidReference` for a malformed path.
    fn field(&self, py: Python<'_>, path: PyBackedStr) -> PyResult<Secret> {
        match self.inner.field(&path) {
            Ok(selected) => Ok(Secret::new(selected)),
            Err(error) => Err(errors::to_py(py, &error)),
        }
    }

    /// The reference the value was loaded for, in canonical form and
    /// without its `#field`.
    #[getter]
    fn reference(&self) -> &str {
        &self.inner.metadata().reference
    }

    /// The provider scheme, for example `"aws-sm"`.
    #[getter]
    fn provider(&self) -> &str {
        &self.inner.metadata().provider
    }

    /// The backend's name for the secret, when it reports one.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.inner.metadata().name.as_deref()
    }

    /// The backend's ARN or other unique id, when it reports one.
    #[getter]
    fn arn(&self) -> Option<&str> {
        self.inner.metadata().arn.as_deref()
    }

    /// The version as text: the version id (AWS `VersionId`) when there is
    /// one, else the version number (SSM, Vault KV), else `None`.
    #[getter]
    fn version(&self) -> Option<String> {
        let metadata = self.inner.metadata();
        match (&metadata.version_id, metadata.version_number) {
            (Some(id), _) => Some(id.clone()),
            (None, Some(number)) => Some(number.to_string()),
            (None, None) => None,
        }
    }

    /// The backend's version id (AWS `VersionId`), when it reports one.
    #[getter]
    fn version_id(&self) -> Option<&str> {
        self.inner.metadata().version_id.as_deref()
    }

    /// The version number (SSM parameter version, Vault KV version).
    #[getter]
    fn version_number(&self) -> Option<u64> {
        self.inner.metadata().version_number
    }

    /// The staging labels of this version (AWS `VersionStages`, SSM
    /// labels), as a tuple of `str`.
    #[getter]
    fn stages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.inner.metadata().version_stages)
    }

    /// When the backend created this version (aware UTC `datetime`), or
    /// `None`.
    #[getter]
    fn created_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.metadata().created_at)
    }

    /// When keystead fetched this value (aware UTC `datetime`).
    #[getter]
    fn fetched_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.metadata().fetched_at)
    }

    /// When keystead plans to refresh the value in the background (an
    /// estimate, as an aware UTC `datetime`), or `None`.
    #[getter]
    fn refresh_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.metadata().refresh_at)
    }

    /// When the value stops being valid at the backend (a lease or
    /// credential expiry, as an aware UTC `datetime`), or `None`.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        optional_datetime(py, self.inner.metadata().expires_at)
    }

    /// The `#field` path that produced this value, or `None`.
    #[getter]
    fn field_path(&self) -> Option<&str> {
        self.inner.metadata().field.as_deref()
    }

    /// `"text"` or `"binary"`.
    #[getter]
    fn encoding(&self) -> &'static str {
        match self.inner.encoding() {
            Encoding::Binary => "binary",
            _ => "text",
        }
    }

    /// Whether the value is binary, so that only `reveal_bytes()` works.
    #[getter]
    fn is_binary(&self) -> bool {
        self.inner.is_binary()
    }

    fn __repr__(&self) -> String {
        let metadata = self.inner.metadata();
        let mut text = format!("<keystead.Secret reference={:?}", metadata.reference);
        if let Some(field) = &metadata.field {
            text.push_str(&format!(" field={field:?}"));
        }
        if let Some(version) = self.version() {
            text.push_str(&format!(" version={version:?}"));
        }
        text.push_str(&format!(" encoding={} value=[REDACTED]>", self.encoding()));
        text
    }

    fn __str__(&self) -> &'static str {
        "[REDACTED]"
    }

    /// Formats `"[REDACTED]"` with the spec, so that `f"{secret:>20}"`
    /// lines up like any other text.
    fn __format__<'py>(&self, py: Python<'py>, spec: PyBackedStr) -> PyResult<Bound<'py, PyAny>> {
        PyString::new(py, "[REDACTED]").call_method1("__format__", (spec,))
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "keystead.Secret cannot be pickled, so that its value never leaves the process by accident; \
             send the reference instead and read it where it is needed",
        ))
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }
}

static FROM_TIMESTAMP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Converts a wall-clock time to an aware `datetime` in UTC.
fn optional_datetime(
    py: Python<'_>,
    time: Option<SystemTime>,
) -> PyResult<Option<Bound<'_, PyAny>>> {
    let Some(time) = time else {
        return Ok(None);
    };
    let from_timestamp = FROM_TIMESTAMP.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("datetime")?
            .getattr("fromtimestamp")?
            .unbind())
    })?;
    let utc = UTC.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("datetime")?
            .getattr("timezone")?
            .getattr("utc")?
            .unbind())
    })?;
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    from_timestamp
        .bind(py)
        .call1((seconds, utc.bind(py)))
        .map(Some)
}
