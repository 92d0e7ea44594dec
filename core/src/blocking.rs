//! A client that owns its tokio runtime, for callers without one: the
//! Python, Node and Go bindings, the CLI, and synchronous Rust programs.
//!
//! Every method blocks the calling thread; none may be called from inside
//! a tokio runtime's worker thread.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::client::{Client, ClientBuilder, PrefetchOutcome, RotationEvent, SecretHandle, Subscription};
use crate::config::Config;
use crate::error::{Error, ErrorClass};
use crate::metrics::MetricsSnapshot;
use crate::secret::Secret;

/// Worker threads of the owned runtime. Loads are I/O-bound and a warm read
/// never touches the runtime, so two threads are enough and keep an idle
/// process small.
pub const RUNTIME_WORKER_THREADS: usize = 2;

/// A [`Client`] with its own multi-threaded tokio runtime.
///
/// ```no_run
/// # fn run() -> Result<(), keystead::Error> {
/// let client = keystead::BlockingClient::new(keystead::Config::from_env()?)?;
/// let token = client.get("env://API_TOKEN", None)?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
pub struct BlockingClient {
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
}

impl BlockingClient {
    /// Starts a runtime and builds a client on it. No backend is contacted.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] for invalid configuration, or
    /// [`ErrorClass::Internal`] when the runtime's threads cannot start.
    pub fn new(config: Config) -> Result<BlockingClient, Error> {
        BlockingClient::with_builder(Client::builder().config(config))
    }

    /// Starts a runtime and builds the client from `builder`, which may add
    /// providers or an audit hook.
    ///
    /// # Errors
    /// As [`BlockingClient::new`].
    pub fn with_builder(builder: ClientBuilder) -> Result<BlockingClient, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(RUNTIME_WORKER_THREADS)
            .thread_name("keystead-worker")
            .enable_all()
            .build()
            .map_err(|error| Error::with_source(ErrorClass::Internal, "cannot start the tokio runtime", error))?;
        let client = builder.runtime(runtime.handle().clone()).build()?;
        Ok(BlockingClient {
            runtime: Some(runtime),
            client,
        })
    }

    /// Returns the async client, for callers that run futures on
    /// [`BlockingClient::runtime`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Returns a handle to the owned runtime.
    pub fn runtime(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            // Only reachable after `abandon`, which consumes self.
            None => unreachable_runtime(),
        }
    }

    /// Runs a future on the owned runtime, with an optional time limit.
    ///
    /// # Errors
    /// The future's error, or [`ErrorClass::Unavailable`] when the time
    /// limit passes first. A load that times out keeps running in the
    /// background, so the next read may find its result.
    pub fn block_on<T>(
        &self,
        timeout: Option<Duration>,
        future: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let runtime = match &self.runtime {
            Some(runtime) => runtime,
            None => unreachable_runtime(),
        };
        let bounded = async {
            match timeout {
                None => future.await,
                Some(limit) => match tokio::time::timeout(limit, future).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::new(
                        ErrorClass::Unavailable,
                        format!("the call did not finish within {limit:?}"),
                    )),
                },
            }
        };

        // Blocking a runtime's own thread (for example from a rotation
        // callback) is allowed on a multi-threaded runtime once the thread
        // hands its other work away; on a single-threaded one it would
        // deadlock, so it is an error instead.
        match tokio::runtime::Handle::try_current() {
            Err(_) => runtime.block_on(bounded),
            Ok(current) if current.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| runtime.handle().block_on(bounded))
            }
            Ok(_) => Err(Error::new(
                ErrorClass::Internal,
                "a blocking keystead call was made on a single-threaded async runtime; use the async Client there",
            )),
        }
    }

    /// Reads a reference. See [`Client::get`].
    ///
    /// # Errors
    /// As [`Client::get`], or [`ErrorClass::Unavailable`] on timeout.
    pub fn get(&self, reference: &str, timeout: Option<Duration>) -> Result<Secret, Error> {
        if let Some(secret) = self.client.get_cached(reference) {
            return Ok(secret);
        }
        self.block_on(timeout, self.client.get(reference))
    }

    /// Returns the fresh cached value, without I/O. See [`Client::get_cached`].
    pub fn get_cached(&self, reference: &str) -> Option<Secret> {
        self.client.get_cached(reference)
    }

    /// Returns a handle for repeated reads. See [`Client::handle`].
    ///
    /// # Errors
    /// As [`Client::handle`].
    pub fn handle(&self, reference: &str) -> Result<SecretHandle, Error> {
        self.client.handle(reference)
    }

    /// Loads a reference now. See [`Client::refresh`].
    ///
    /// # Errors
    /// As [`Client::refresh`], or [`ErrorClass::Unavailable`] on timeout.
    pub fn refresh(&self, reference: &str, timeout: Option<Duration>) -> Result<Secret, Error> {
        self.block_on(timeout, self.client.refresh(reference))
    }

    /// Drops a cached value. See [`Client::invalidate`].
    ///
    /// # Errors
    /// As [`Client::invalidate`].
    pub fn invalidate(&self, reference: &str) -> Result<bool, Error> {
        self.client.invalidate(reference)
    }

    /// Loads several references. See [`Client::prefetch`].
    ///
    /// # Errors
    /// [`ErrorClass::Unavailable`] when the time limit passes; per-reference
    /// failures are in the outcomes.
    pub fn prefetch<S: AsRef<str>>(
        &self,
        references: &[S],
        timeout: Option<Duration>,
    ) -> Result<Vec<PrefetchOutcome>, Error> {
        self.block_on(timeout, async { Ok(self.client.prefetch(references).await) })
    }

    /// Subscribes to rotations. See [`Client::subscribe`]; the callback runs
    /// on one of the owned runtime's worker threads.
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn subscribe<F>(&self, reference: &str, callback: F) -> Result<Subscription, Error>
    where
        F: Fn(&RotationEvent) + Send + Sync + 'static,
    {
        let _guard = self.runtime().enter();
        self.client.subscribe(reference, callback)
    }

    /// Returns a snapshot of the counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.client.metrics()
    }

    /// Closes the client, waits up to `timeout` for lease revocations, and
    /// stops the runtime.
    pub fn close(mut self, timeout: Option<Duration>) {
        let _ = self.block_on(timeout, async {
            self.client.shutdown().await;
            Ok(())
        });
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }

    /// Closes the client without waiting: background work stops, cached
    /// values are wiped.
    pub fn close_now(&self) {
        self.client.close();
    }

    /// Gives up this client without touching its runtime or its locks. Call
    /// it in a child process after `fork`: the runtime's threads did not
    /// survive the fork, and a lock one of them held at that moment stays
    /// held forever, so stopping the runtime or closing the cache could
    /// block. The child builds a new client instead.
    pub fn abandon(mut self) {
        // Limitation: the child's copies of cached values are leaked, not
        // wiped, because wiping them needs the locks above. They are the
        // same bytes the parent still holds.
        if let Some(runtime) = self.runtime.take() {
            std::mem::forget(runtime);
        }
        // Skips Drop, which would close the cache.
        std::mem::forget(self);
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        self.client.close();
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime inside another runtime panics; a background
            // shutdown works from any thread.
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for BlockingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingClient").field("client", &self.client).finish()
    }
}

fn unreachable_runtime() -> ! {
    // `runtime` is None only inside `close` and `abandon`, which consume
    // the client, and in `drop`; no method can observe it.
    panic!("keystead: the runtime was already shut down")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_without_a_caller_runtime() {
        std::env::set_var("KEYSTEAD_BLOCKING_TEST", "from-env");
        let client = BlockingClient::new(Config::default()).unwrap();
        let secret = client.get("env://KEYSTEAD_BLOCKING_TEST", Some(Duration::from_secs(5))).unwrap();
        assert_eq!(secret.expose_str().unwrap(), "from-env");
        assert!(client.get_cached("env://KEYSTEAD_BLOCKING_TEST").is_some());
        client.close(Some(Duration::from_secs(1)));
    }

    #[test]
    fn blocking_call_from_a_callback_thread_works() {
        std::env::set_var("KEYSTEAD_BLOCKING_NESTED", "nested");
        let client = std::sync::Arc::new(BlockingClient::new(Config::default()).unwrap());
        let inner = std::sync::Arc::clone(&client);
        let read = client
            .runtime()
            .block_on(async move {
                tokio::spawn(async move {
                    inner
                        .get("env://KEYSTEAD_BLOCKING_NESTED", Some(Duration::from_secs(5)))
                        .map(|secret| secret.expose_str().unwrap().to_owned())
                })
                .await
            })
            .unwrap();
        assert_eq!(read.unwrap(), "nested");
    }

    #[test]
    fn missing_env_is_not_found() {
        let client = BlockingClient::new(Config::default()).unwrap();
        let error = client.get("env://KEYSTEAD_BLOCKING_TEST_UNSET", None).unwrap_err();
        assert_eq!(error.class(), ErrorClass::NotFound);
    }
}
