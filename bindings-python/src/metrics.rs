//! Converts a [`MetricsSnapshot`] to the dict `Client.metrics()` returns.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use keystead::MetricsSnapshot;

pub(crate) fn to_dict<'py>(
    py: Python<'py>,
    snapshot: &MetricsSnapshot,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("hits", snapshot.hits)?;
    dict.set_item("misses", snapshot.misses)?;
    dict.set_item("refreshes", snapshot.refreshes)?;
    dict.set_item("stale_serves", snapshot.stale_serves)?;
    dict.set_item("backend_calls", snapshot.backend_calls)?;
    dict.set_item("rotations", snapshot.rotations)?;
    dict.set_item("evictions", snapshot.evictions)?;
    dict.set_item("entries", snapshot.entries)?;

    let errors = PyDict::new(py);
    for (class, count) in &snapshot.errors {
        errors.set_item(class.as_str(), count)?;
    }
    dict.set_item("errors", errors)?;

    dict.set_item(
        "load_latency_buckets",
        snapshot.load_latency_buckets.clone(),
    )?;
    dict.set_item("load_latency_sum", snapshot.load_latency_sum.as_secs_f64())?;
    dict.set_item("load_count", snapshot.load_count)?;
    Ok(dict)
}
