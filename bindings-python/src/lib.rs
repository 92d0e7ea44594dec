//! `keystead._native`: the compiled half of the `keystead` Python package.
//!
//! The module is private. The pure-Python package `keystead` re-exports it,
//! adds the exception classes, decorators and docs, and is the only API
//! users should import. Everything here converts types, releases the GIL
//! while a call waits, and maps errors; caching, refresh and redaction live
//! in the `keystead` crate.

use pyo3::prelude::*;

// Limitation: the core's `tracing` events (loads, stale serves, failures)
// are not forwarded to Python's `logging`; only rotation callback errors are
// logged, by the pure-Python layer. A bridge would need the GIL on runtime
// threads for every event.

mod asyncio;
mod client;
mod config;
mod errors;
mod fork;
mod metrics;
mod secret;
mod subscription;

// `gil_used = true`: client rebuilds after a fork rely on the GIL to run one
// at a time (see `fork`), and abi3 wheels cannot load in a free-threaded
// interpreter anyway.
#[pymodule(gil_used = true)]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_class::<client::Client>()?;
    module.add_class::<secret::Secret>()?;
    module.add_class::<subscription::Subscription>()?;
    module.add_class::<subscription::RotationEvent>()?;
    module.add_function(wrap_pyfunction!(fork::after_fork_in_child, module)?)?;
    module.add_function(wrap_pyfunction!(fork::interpreter_exiting, module)?)?;
    Ok(())
}
