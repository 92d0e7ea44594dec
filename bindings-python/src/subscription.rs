//! Rotation subscriptions: `Client.subscribe` and the objects it returns.
//!
//! The client keeps every live subscription in a [`Registry`]. A
//! subscription therefore lasts until `cancel()` or `close()` even when the
//! caller drops the returned object, and a client rebuilt after a fork can
//! subscribe again on its new runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use pyo3::prelude::*;

use keystead::{BlockingClient, Error};

use crate::errors;
use crate::fork;
use crate::secret::Secret;

/// The subscriptions of one client.
// Limitation: the callbacks kept here are invisible to Python's cycle
// collector (the client has no `__traverse__`), so a callback that refers
// to its own client keeps both alive until `close()` or `cancel()`.
#[derive(Default)]
pub(crate) struct Registry {
    records: Mutex<Vec<Arc<Record>>>,
    next_id: AtomicU64,
}

/// One subscription: what to call, for which reference, and the core
/// subscription that is live now.
pub(crate) struct Record {
    id: u64,
    reference: String,
    callback: Arc<Py<PyAny>>,
    live: Mutex<Option<LiveSubscription>>,
}

/// A core subscription and the process generation it was made in.
struct LiveSubscription {
    subscription: keystead::Subscription,
    generation: u64,
}

impl LiveSubscription {
    /// Ends the core subscription. One made before a fork belongs to a
    /// cache whose locks may be orphaned, so it is leaked, not dropped.
    fn end(self) {
        if self.generation == fork::generation() {
            drop(self.subscription);
        } else {
            std::mem::forget(self.subscription);
        }
    }
}

impl Registry {
    /// Subscribes `callback` to rotations of `reference` on `blocking`.
    pub(crate) fn add(
        self: &Arc<Self>,
        blocking: &BlockingClient,
        reference: &str,
        callback: Py<PyAny>,
    ) -> Result<Subscription, Error> {
        let callback = Arc::new(callback);
        let subscription = subscribe(blocking, reference, &callback)?;
        let record = Arc::new(Record {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            reference: reference.to_owned(),
            callback,
            live: Mutex::new(Some(LiveSubscription {
                subscription,
                generation: fork::generation(),
            })),
        });
        self.records.lock().push(Arc::clone(&record));
        Ok(Subscription {
            record,
            registry: Arc::downgrade(self),
        })
    }

    /// Subscribes every record again on a client rebuilt after a fork.
    pub(crate) fn resubscribe(&self, blocking: &BlockingClient) -> Result<(), Error> {
        let records = self.records.lock().clone();
        for record in records {
            let subscription = subscribe(blocking, &record.reference, &record.callback)?;
            let fresh = LiveSubscription {
                subscription,
                generation: fork::generation(),
            };
            if let Some(old) = record.live.lock().replace(fresh) {
                old.end();
            }
        }
        Ok(())
    }

    /// Ends every subscription; used when the client closes.
    pub(crate) fn clear(&self) {
        let records = std::mem::take(&mut *self.records.lock());
        for record in records {
            record.end();
        }
    }

    fn remove(&self, id: u64) {
        self.records.lock().retain(|record| record.id != id);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some(live) = self.live.get_mut().take() {
            live.end();
        }
    }
}

impl Record {
    fn end(&self) {
        if let Some(live) = self.live.lock().take() {
            live.end();
        }
    }

    fn is_active(&self) -> bool {
        self.live.lock().is_some()
    }
}

fn subscribe(
    blocking: &BlockingClient,
    reference: &str,
    callback: &Arc<Py<PyAny>>,
) -> Result<keystead::Subscription, Error> {
    let callback = Arc::clone(callback);
    blocking.subscribe(reference, move |event| deliver(&callback, event))
}

/// Calls the Python callback on the runtime worker thread that found the
/// new version.
fn deliver(callback: &Py<PyAny>, event: &keystead::RotationEvent) {
    // Taking the GIL while the interpreter finalizes can hang or kill the
    // thread; after `atexit` the event is dropped instead.
    if fork::interpreter_is_exiting() {
        return;
    }
    let _ = Python::try_attach(|py| {
        let callback = callback.bind(py);
        let outcome =
            RotationEvent::from_core(py, event).and_then(|event| callback.call1((event,)));
        // The package wraps callbacks so that their exceptions are logged;
        // anything that still escapes goes to sys.unraisablehook.
        if let Err(error) = outcome {
            error.write_unraisable(py, Some(callback));
        }
    });
}

/// A live subscription to rotations of one reference.
///
/// It lasts until `cancel()` is called or the client is closed; dropping
/// this object does not end it. Usable as a context manager that cancels
/// on exit.
#[pyclass(frozen, module = "keystead", name = "Subscription")]
pub(crate) struct Subscription {
    record: Arc<Record>,
    registry: Weak<Registry>,
}

#[pymethods]
impl Subscription {
    /// Stops the calls. Calling it again does nothing.
    fn cancel(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(self.record.id);
        }
        self.record.end();
    }

    /// The reference passed to `subscribe`.
    #[getter]
    fn reference(&self) -> &str {
        &self.record.reference
    }

    /// Whether the callback is still subscribed.
    #[getter]
    fn active(&self) -> bool {
        self.record.is_active()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        _kind: &Bound<'_, PyAny>,
        _value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        self.cancel();
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.record.is_active() {
            "active"
        } else {
            "cancelled"
        };
        format!(
            "<keystead.Subscription reference={:?} {state}>",
            self.record.reference
        )
    }
}

/// A notice that a subscribed reference has a new version.
#[pyclass(frozen, module = "keystead", name = "RotationEvent")]
pub(crate) struct RotationEvent {
    reference: String,
    secret: Option<Py<Secret>>,
    error: Option<Py<PyAny>>,
}

impl RotationEvent {
    fn from_core<'py>(
        py: Python<'py>,
        event: &keystead::RotationEvent,
    ) -> PyResult<Bound<'py, RotationEvent>> {
        let (secret, error) = match &event.secret {
            Ok(secret) => (Some(Py::new(py, Secret::new(secret.clone()))?), None),
            Err(error) => (None, Some(errors::to_exception(py, error)?.unbind())),
        };
        Bound::new(
            py,
            RotationEvent {
                reference: event.reference.clone(),
                secret,
                error,
            },
        )
    }
}

#[pymethods]
impl RotationEvent {
    /// The reference as passed to `subscribe`.
    #[getter]
    fn reference(&self) -> &str {
        &self.reference
    }

    /// The new value (its field, when the reference has one), or `None`
    /// when selecting the field failed.
    #[getter]
    fn secret(&self, py: Python<'_>) -> Option<Py<Secret>> {
        self.secret.as_ref().map(|secret| secret.clone_ref(py))
    }

    /// The `keystead.Error` from selecting the field in the new version
    /// (for example `FieldNotFound`), or `None`.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.error.as_ref().map(|error| error.clone_ref(py))
    }

    fn __repr__(&self) -> String {
        let outcome = if self.secret.is_some() {
            "secret"
        } else {
            "error"
        };
        format!(
            "<keystead.RotationEvent reference={:?} {outcome}>",
            self.reference
        )
    }
}
