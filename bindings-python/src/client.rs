//! `keystead._native.Client`: the base class of `keystead.Client` and
//! `keystead.AsyncClient`.
//!
//! A warm `get` stays on the calling thread with the GIL held: one atomic
//! load of the live client, a cache lookup, and a new `Secret` object that
//! shares the cached bytes. Any call that may wait (a load, a refresh, a
//! close) releases the GIL first.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyDict;
use tokio::runtime::{Handle, RuntimeFlavor};

use keystead::{BlockingClient, Config, Error, ErrorClass, PrefetchOutcome};

use crate::asyncio;
use crate::config;
use crate::errors;
use crate::fork;
use crate::metrics;
use crate::secret::Secret;
use crate::subscription::{Registry, Subscription};

/// The native client. See the `keystead.Client` docstring for the API.
#[pyclass(subclass, frozen, module = "keystead._native", name = "Client")]
pub(crate) struct Client {
    config: Config,
    /// The core client of this process generation; `None` once closed.
    live: ArcSwapOption<Live>,
    closed: AtomicBool,
    subscriptions: Arc<Registry>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // A client inherited through a fork and never used in the child must
        // not be dropped normally: that would take locks and signal threads
        // that the fork left behind.
        if let Some(live) = self.live.swap(None) {
            if !live.is_current() {
                fork::abandon(live);
            }
        }
    }
}

/// A core client with its runtime, and the process it was started in.
pub(crate) struct Live {
    blocking: BlockingClient,
    generation: u64,
    pid: u32,
}

impl Live {
    fn start(config: &Config) -> Result<Live, Error> {
        Ok(Live {
            blocking: BlockingClient::new(config.clone())?,
            generation: fork::generation(),
            pid: std::process::id(),
        })
    }

    /// Returns whether this client was started in the current process. The
    /// process id costs a system call, so the warm path compares only the
    /// generation.
    fn is_current(&self) -> bool {
        self.generation == fork::generation() && self.pid == std::process::id()
    }

    /// Gives the client up without joining its runtime's threads, which do
    /// not exist in a fork child.
    pub(crate) fn abandon(self) {
        self.blocking.abandon();
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (config=None, **overrides))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyAny>>,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Client> {
        let config = config::load(py, config, overrides)?;
        let live = Live::start(&config).map_err(|error| errors::to_py(py, &error))?;
        Ok(Client {
            config,
            live: ArcSwapOption::from_pointee(live),
            closed: AtomicBool::new(false),
            subscriptions: Arc::default(),
        })
    }

    /// Returns the cached value when it is fresh, without I/O or waiting,
    /// else `None`.
    fn get_cached(&self, reference: PyBackedStr) -> Option<Secret> {
        self.cached(&reference).map(Secret::new)
    }

    /// Reads a reference, from the cache when the value is fresh.
    #[pyo3(signature = (reference, timeout=None))]
    fn get(
        &self,
        py: Python<'_>,
        reference: PyBackedStr,
        timeout: Option<f64>,
    ) -> PyResult<Secret> {
        // Checked before the cache, so a bad timeout fails the same way
        // whether or not the value happens to be cached.
        let timeout = timeout_from(timeout)?;
        if let Some(secret) = self.cached(&reference) {
            return Ok(Secret::new(secret));
        }
        let live = self.live_for(py, &reference)?;
        let reference: &str = &reference;
        let result = wait(py, || live.blocking.get(reference, timeout));
        result
            .map(Secret::new)
            .map_err(|error| errors::to_py(py, &error.for_reference(reference)))
    }

    /// Loads a reference from its backend now.
    #[pyo3(signature = (reference, timeout=None))]
    fn refresh(
        &self,
        py: Python<'_>,
        reference: PyBackedStr,
        timeout: Option<f64>,
    ) -> PyResult<Secret> {
        let timeout = timeout_from(timeout)?;
        let live = self.live_for(py, &reference)?;
        let reference: &str = &reference;
        let result = wait(py, || live.blocking.refresh(reference, timeout));
        result
            .map(Secret::new)
            .map_err(|error| errors::to_py(py, &error.for_reference(reference)))
    }

    /// Drops a reference's cached value; returns whether one was cached.
    fn invalidate(&self, py: Python<'_>, reference: PyBackedStr) -> PyResult<bool> {
        let live = self.live_for(py, &reference)?;
        live.blocking
            .invalidate(&reference)
            .map_err(|error| errors::to_py(py, &error))
    }

    /// Loads several references at once; returns a dict from each reference
    /// to `None` (cached) or the exception its load failed with.
    #[pyo3(signature = (references, timeout=None))]
    fn prefetch<'py>(
        &self,
        py: Python<'py>,
        references: Vec<String>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let timeout = timeout_from(timeout)?;
        let live = self.live_any(py)?;
        let outcomes = wait(py, || live.blocking.prefetch(&references, timeout));
        match outcomes {
            Ok(outcomes) => prefetch_dict(py, &outcomes),
            Err(error) => Err(errors::to_py(py, &error)),
        }
    }

    /// Calls `callback(event)` once for every new version of `reference`.
    fn subscribe(
        &self,
        py: Python<'_>,
        reference: PyBackedStr,
        callback: Py<PyAny>,
    ) -> PyResult<Subscription> {
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err("subscribe: callback must be callable"));
        }
        let live = self.live_for(py, &reference)?;
        self.subscriptions
            .add(&live.blocking, &reference, callback)
            .map_err(|error| errors::to_py(py, &error))
    }

    /// Returns a snapshot of the cache's counters, as a dict.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let live = self.live_any(py)?;
        metrics::to_dict(py, &live.blocking.metrics())
    }

    /// Closes the client: stops background work, wipes cached values, ends
    /// subscriptions, and waits up to `timeout` seconds (no limit when
    /// `None`) for lease revocations. Calling it again does nothing.
    #[pyo3(signature = (timeout=None))]
    fn close(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = timeout_from(timeout)?;
        self.closed.store(true, Ordering::Release);
        self.subscriptions.clear();
        let Some(live) = self.live.swap(None) else {
            return Ok(());
        };
        if !live.is_current() {
            fork::abandon(live);
            return Ok(());
        }

        wait(py, move || {
            let blocking = &live.blocking;
            let _ = blocking.block_on(timeout, async {
                blocking.client().shutdown().await;
                Ok(())
            });
            // Dropping the last handle stops the runtime without joining
            // its threads, which is safe on any thread.
            drop(live);
        });
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `AsyncClient.get`: an awaitable that resolves to the `Secret`, or to
    /// the exception to raise.
    #[pyo3(signature = (reference, timeout=None))]
    fn _get_async<'py>(
        &self,
        py: Python<'py>,
        reference: String,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout_from(timeout)?;
        let live = self.live_for(py, &reference)?;
        let client = live.blocking.client().clone();
        asyncio::spawn(py, &live.blocking.runtime(), async move {
            let result = within(timeout, client.get(&reference)).await;
            SecretOutcome(result.map_err(|error| error.for_reference(&reference)))
        })
    }

    /// `AsyncClient.refresh`: as `_get_async`.
    #[pyo3(signature = (reference, timeout=None))]
    fn _refresh_async<'py>(
        &self,
        py: Python<'py>,
        reference: String,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout_from(timeout)?;
        let live = self.live_for(py, &reference)?;
        let client = live.blocking.client().clone();
        asyncio::spawn(py, &live.blocking.runtime(), async move {
            let result = within(timeout, client.refresh(&reference)).await;
            SecretOutcome(result.map_err(|error| error.for_reference(&reference)))
        })
    }

    /// `AsyncClient.prefetch`: an awaitable that resolves to the dict
    /// `prefetch` returns, or to the exception to raise.
    #[pyo3(signature = (references, timeout=None))]
    fn _prefetch_async<'py>(
        &self,
        py: Python<'py>,
        references: Vec<String>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = timeout_from(timeout)?;
        let live = self.live_any(py)?;
        let client = live.blocking.client().clone();
        asyncio::spawn(py, &live.blocking.runtime(), async move {
            let outcomes = within(timeout, async { Ok(client.prefetch(&references).await) }).await;
            PrefetchResult(outcomes)
        })
    }

    /// `AsyncClient.close`: closes the client at once and returns an
    /// awaitable for the lease revocations, or `None` when there is nothing
    /// to wait for. The caller then calls `close()` to stop the runtime.
    #[pyo3(signature = (timeout=None))]
    fn _close_async<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let timeout = timeout_from(timeout)?;
        self.closed.store(true, Ordering::Release);
        self.subscriptions.clear();
        let Some(live) = self.live.load_full() else {
            return Ok(None);
        };
        if !live.is_current() {
            return Ok(None);
        }

        let client = live.blocking.client().clone();
        client.close();
        let revoked = asyncio::spawn(py, &live.blocking.runtime(), async move {
            let shutdown = async {
                client.shutdown().await;
                Ok(())
            };
            let _ = within(timeout, shutdown).await;
        })?;
        Ok(Some(revoked))
    }
}

impl Client {
    /// Returns the fresh cached value, without I/O, system calls or
    /// releasing the GIL: the warm path.
    fn cached(&self, reference: &str) -> Option<keystead::Secret> {
        let guard = self.live.load();
        let live = guard.as_ref()?;
        if live.generation != fork::generation() {
            return None;
        }
        live.blocking.get_cached(reference)
    }

    /// Returns the live core client, rebuilt first when this process is a
    /// fork child of the one that built it.
    fn live(&self) -> Result<Arc<Live>, Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(errors::closed());
        }
        if let Some(live) = self.live.load_full() {
            if live.is_current() {
                return Ok(live);
            }
        }
        // The handle loaded above is dropped by now, so `rebuild` can take
        // sole ownership of the inherited client and abandon it.
        self.rebuild()
    }

    /// [`Client::live`] for calls about one reference, whose errors name it.
    fn live_for(&self, py: Python<'_>, reference: &str) -> PyResult<Arc<Live>> {
        self.live()
            .map_err(|error| errors::to_py(py, &error.for_reference(reference)))
    }

    /// [`Client::live`] for calls about no single reference.
    fn live_any(&self, py: Python<'_>) -> PyResult<Arc<Live>> {
        self.live().map_err(|error| errors::to_py(py, &error))
    }

    /// Starts a new core client in a fork child, subscribes the callbacks
    /// again, and abandons the client inherited from the parent.
    ///
    /// Runs with the GIL held throughout; see the `fork` module.
    fn rebuild(&self) -> Result<Arc<Live>, Error> {
        let Some(inherited) = self.live.load_full() else {
            return Err(errors::closed());
        };

        let fresh = Arc::new(Live::start(&self.config)?);
        self.live.store(Some(Arc::clone(&fresh)));
        fork::abandon(inherited);
        self.subscriptions.resubscribe(&fresh.blocking)?;
        Ok(fresh)
    }
}

/// Runs a call that may block, with the GIL released.
///
/// The call may come from a subscription callback, which runs on a worker
/// thread of a keystead runtime, where blocking on a runtime would panic.
/// There the worker is first handed over to the runtime with
/// `block_in_place`.
fn wait<T, F>(py: Python<'_>, call: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    py.detach(|| match Handle::try_current() {
        Err(_) => call(),
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        // A caller's own single-threaded runtime cannot lend its thread; the
        // call runs on a scoped thread instead.
        Ok(_) => std::thread::scope(|scope| match scope.spawn(call).join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }),
    })
}

/// Applies a call's time limit to an async call, with the same error the
/// blocking calls return.
async fn within<T>(
    limit: Option<Duration>,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(limit) = limit else {
        return future.await;
    };
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorClass::Unavailable,
            format!("the call did not finish within {limit:?}"),
        )),
    }
}

/// Converts a timeout in seconds, where `None` means no limit.
fn timeout_from(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a finite, non-negative number of seconds or None, not {seconds}"
        ))
    })
}

fn prefetch_dict<'py>(
    py: Python<'py>,
    outcomes: &[PrefetchOutcome],
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for outcome in outcomes {
        match &outcome.result {
            Ok(()) => dict.set_item(&outcome.reference, py.None())?,
            Err(error) => dict.set_item(&outcome.reference, errors::to_exception(py, error)?)?,
        }
    }
    Ok(dict)
}

/// The result of an async read, converted with the GIL on the runtime's
/// blocking pool: a `Secret`, or the exception for the Python side to raise.
struct SecretOutcome(Result<keystead::Secret, Error>);

impl<'py> IntoPyObject<'py> for SecretOutcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Ok(secret) => Ok(Bound::new(py, Secret::new(secret))?.into_any()),
            Err(error) => errors::to_exception(py, &error),
        }
    }
}

/// The result of an async prefetch: the outcome dict, or the exception for
/// the Python side to raise.
struct PrefetchResult(Result<Vec<PrefetchOutcome>, Error>);

impl<'py> IntoPyObject<'py> for PrefetchResult {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Ok(outcomes) => Ok(prefetch_dict(py, &outcomes)?.into_any()),
            Err(error) => errors::to_exception(py, &error),
        }
    }
}
