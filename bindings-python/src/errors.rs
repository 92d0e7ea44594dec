//! Maps core errors to the exception classes in `keystead._errors`.
//!
//! The classes are written in Python, so that they carry docstrings, pickle
//! cleanly across `multiprocessing` and mix in the matching built-in
//! exceptions. `keystead._errors._BY_CLASS` maps each core error class name
//! (`"not-found"`, ...) to its exception class.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use keystead::{Error, ErrorClass};

static CLASSES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// Builds the exception instance for `error`: the class matching its error
/// class, with the core's message, `.reference` and `.error_class`.
pub(crate) fn to_exception<'py>(py: Python<'py>, error: &Error) -> PyResult<Bound<'py, PyAny>> {
    let classes = CLASSES.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let module = py.import("keystead._errors")?;
        Ok(module.getattr("_BY_CLASS")?.cast_into::<PyDict>()?.unbind())
    })?;
    let classes = classes.bind(py);
    let name = error.class().as_str();

    // A class added to core after this binding was built falls back to the
    // base class, which still carries the class name.
    let class = match classes.get_item(name)? {
        Some(class) => class,
        None => py.import("keystead._errors")?.getattr("Error")?,
    };
    class.call1((error.to_string(), error.reference(), name))
}

/// Converts `error` into the `PyErr` to raise.
pub(crate) fn to_py(py: Python<'_>, error: &Error) -> PyErr {
    match to_exception(py, error) {
        Ok(exception) => PyErr::from_value(exception),
        Err(failure) => failure,
    }
}

/// Returns the error for any call on a closed client.
pub(crate) fn closed() -> Error {
    Error::new(ErrorClass::Closed, "the client is closed")
}
