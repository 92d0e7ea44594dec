//! The `Client` class.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use napi::bindgen_prelude::{
    AsyncTask, Either, Function, Object, PromiseRaw, ToNapiValue, Undefined, Unknown,
};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::{Env, Task};
use napi_derive::napi;

use keystead::BlockingClient;

use crate::config;
use crate::error::to_js_error;
use crate::metrics::Metrics;
use crate::promise::{self, closed_error, PendingPromise};
use crate::reader;
use crate::rotation::{RotationEvent, SharedSubscriptions, Subscription, Subscriptions};
use crate::secret::Secret;

/// A cached, auto-refreshing secrets client.
///
/// Loads run on the client's own two-thread tokio runtime, never on the
/// event loop. The client does not keep the process alive: only a pending
/// promise (an unfinished `get`, `refresh`, `prefetch` or `close`) does,
/// as any pending I/O would. Rotation listeners do not.
#[napi]
pub struct Client {
    client: keystead::Client,
    runtime: tokio::runtime::Handle,
    /// The owner of the runtime, or `None` once `close()` was called. It is
    /// a cell because `close` takes `&self`. napi-rs keeps a borrow of the
    /// object until a returned task settles, and an exclusive borrow would
    /// make every other method throw while `close()` is pending.
    owner: RefCell<Option<BlockingClient>>,
    subscriptions: SharedSubscriptions,
}

/// Options for `close()`.
#[napi(object)]
pub struct CloseOptions {
    /// Milliseconds to wait for lease revocations before the runtime
    /// stops. Unset waits until every revocation has finished or failed.
    pub timeout: Option<f64>,
}

/// The result of prefetching one reference.
#[napi(object, object_from_js = false)]
pub struct PrefetchOutcome<'env> {
    /// The reference as passed.
    pub reference: String,
    /// Whether the value is now cached (loaded now, or already fresh or
    /// loading).
    pub ok: bool,
    /// The load's error when `ok` is false.
    #[napi(ts_type = "Error")]
    pub error: Option<Unknown<'env>>,
}

#[napi]
impl Client {
    /// Creates a client. `config` is the path of a `keystead.toml`, or an
    /// object with the same schema. Without it, the file named by
    /// `KEYSTEAD_CONFIG` is read, or the defaults are used. No backend is
    /// contacted until the first read. Throws `ConfigError`.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "string | Record<string, unknown>")] config: Option<
            Either<String, Object>,
        >,
    ) -> napi::Result<Client> {
        let config = config::from_argument(&env, config)?;
        let owner = BlockingClient::new(config).map_err(|error| to_js_error(&env, &error))?;
        Ok(Client {
            client: owner.client().clone(),
            runtime: owner.runtime(),
            owner: RefCell::new(Some(owner)),
            subscriptions: SharedSubscriptions::default(),
        })
    }

    /// Reads a reference, from the cache when the value is fresh.
    ///
    /// Concurrent reads of one reference share one backend call. A cached
    /// value resolves without a trip through the runtime, but still costs
    /// a microtask; `getCached` avoids that.
    // Limitation: no per-call timeout, unlike the Python binding. Core turns
    // a timeout into an `unavailable` error only in
    // `BlockingClient::block_on`, which blocks the calling thread, and has
    // no async equivalent to await on the runtime.
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        reference: String,
    ) -> napi::Result<PromiseRaw<'env, Secret>> {
        if let Some(secret) = self.client.get_cached(&reference) {
            return promise::resolved(env, Secret::from(secret));
        }
        let client = self.client.clone();
        let load_reference = reference.clone();
        self.spawn(env, Some(&reference), async move {
            client.get(&load_reference).await.map(Secret::from)
        })
    }

    /// Returns the value if it is cached and fresh, synchronously and
    /// without I/O. `undefined` means `get` would have to load it (or the
    /// reference is invalid, or the last load failed).
    ///
    /// `index.js` replaces this method with one that calls a reader from
    /// `cachedReader(reference)`. That one returns the same `Secret` object
    /// for as long as the cached value stays the same, at a fraction of the
    /// cost per call.
    #[napi(ts_return_type = "Secret | undefined")]
    pub fn get_cached(&self, reference: String) -> Either<Secret, Undefined> {
        match self.client.get_cached(&reference) {
            Some(secret) => Either::A(Secret::from(secret)),
            None => Either::B(()),
        }
    }

    /// Returns a function without arguments that reads `reference` from
    /// this client's cache exactly like `getCached(reference)`, or
    /// `undefined` when the reference has no fresh cached value yet.
    /// `index.js` keeps these functions to make `getCached` fast. A reader
    /// keeps the value it found until its first call, so call it soon.
    #[napi(ts_return_type = "(() => Secret | undefined) | undefined")]
    pub fn cached_reader<'env>(
        &self,
        env: &'env Env,
        reference: String,
    ) -> napi::Result<Either<Unknown<'env>, Undefined>> {
        // SAFETY: called on the JavaScript thread with its own environment.
        let function = unsafe { reader::create(env.raw(), &self.client, &reference)? };
        Ok(match function {
            Some(function) => {
                Either::A(unsafe { Unknown::from_raw_unchecked(env.raw(), function) })
            }
            None => Either::B(()),
        })
    }

    /// Loads a reference from its backend now, sharing a load already in
    /// flight. When the load fails, the cached value is kept unless the
    /// failure is authoritative (not found, access denied, deleted).
    #[napi]
    pub fn refresh<'env>(
        &self,
        env: &'env Env,
        reference: String,
    ) -> napi::Result<PromiseRaw<'env, Secret>> {
        let client = self.client.clone();
        let load_reference = reference.clone();
        self.spawn(env, Some(&reference), async move {
            client.refresh(&load_reference).await.map(Secret::from)
        })
    }

    /// Drops a reference's cached value (and every field of it). Returns
    /// whether a value was cached. Throws `InvalidReferenceError`.
    #[napi]
    pub fn invalidate(&self, env: Env, reference: String) -> napi::Result<bool> {
        self.client
            .invalidate(&reference)
            .map_err(|error| to_js_error(&env, &error))
    }

    /// Loads several references at once, with each backend's batch call
    /// where it has one. Resolves to one outcome per reference, in order;
    /// a failed load is reported in its outcome, not as a rejection.
    #[napi(ts_return_type = "Promise<Array<PrefetchOutcome>>")]
    pub fn prefetch<'env>(
        &self,
        env: &'env Env,
        references: Vec<String>,
    ) -> napi::Result<PromiseRaw<'env, PrefetchResults>> {
        let client = self.client.clone();
        self.spawn(env, None, async move {
            let outcomes = client.prefetch(&references).await;
            Ok(PrefetchResults(outcomes))
        })
    }

    /// Calls `listener` on this JavaScript thread (the main thread or the
    /// worker that subscribed) once for every new version of
    /// `reference` (the first load is not a rotation). The reference is
    /// refreshed in the background while subscribed, even when it is not
    /// read. The listener does not keep the process alive, and an
    /// exception it throws is an uncaught exception, as for an
    /// `EventEmitter` listener. Throws `InvalidReferenceError`.
    #[napi(ts_args_type = "reference: string, listener: (event: RotationEvent) => void")]
    pub fn subscribe(
        &self,
        env: Env,
        reference: String,
        listener: Function<'_, RotationEvent, Unknown<'static>>,
    ) -> napi::Result<Subscription> {
        let owner = self.owner.borrow();
        let Some(owner) = owner.as_ref() else {
            return Err(to_js_error(&env, &closed_error(Some(&reference))));
        };

        // Weak: a pending rotation must not hold the event loop open.
        let listener = listener
            .build_threadsafe_function::<RotationEvent>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let subscription = owner
            .subscribe(&reference, move |event| {
                // NonBlocking on an unbounded queue only fails once the
                // environment is shutting down, when no listener remains.
                listener.call(
                    RotationEvent::from(event),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
            })
            .map_err(|error| to_js_error(&env, &error))?;

        let id = Subscriptions::insert(&self.subscriptions, subscription);
        Ok(Subscription::new(
            id,
            SharedSubscriptions::clone(&self.subscriptions),
        ))
    }

    /// Returns a snapshot of the cache's counters.
    #[napi]
    pub fn metrics(&self) -> Metrics {
        Metrics::from(self.client.metrics())
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Closes the client: at once, background refreshes stop, every cached
    /// value is wiped, listeners stop and later calls fail with
    /// `ClosedError`. The promise resolves when lease revocations have
    /// finished (or `options.timeout` milliseconds passed) and the
    /// runtime's threads have stopped. Calling it again resolves at once.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self, options: Option<CloseOptions>) -> AsyncTask<CloseTask> {
        let timeout = options
            .and_then(|options| options.timeout)
            .filter(|millis| millis.is_finite() && *millis >= 0.0)
            .map(|millis| Duration::from_secs_f64(millis / 1000.0));
        self.client.close();
        Subscriptions::clear(&self.subscriptions);
        AsyncTask::new(CloseTask {
            owner: self.owner.borrow_mut().take(),
            timeout,
        })
    }
}

impl Client {
    /// Runs `future` on the client's runtime and settles the returned
    /// promise with its result. After `close()` the promise rejects with
    /// `ClosedError` without running anything.
    fn spawn<'env, T, F>(
        &self,
        env: &'env Env,
        reference: Option<&str>,
        future: F,
    ) -> napi::Result<PromiseRaw<'env, T>>
    where
        T: ToNapiValue + Send + 'static,
        F: Future<Output = Result<T, keystead::Error>> + Send + 'static,
    {
        if self.owner.borrow().is_none() {
            return promise::rejected(env, &closed_error(reference));
        }
        let (pending, promise) = PendingPromise::new(env, reference)?;
        // If the runtime is shutting down, the task is dropped unpolled and
        // `PendingPromise`'s drop rejects the promise.
        self.runtime.spawn(async move {
            let result = future.await;
            pending.settle(result);
        });
        Ok(promise)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // A client collected without `close()` still stops its listeners;
        // dropping `owner` then closes the cache and stops the runtime in
        // the background.
        Subscriptions::clear(&self.subscriptions);
    }
}

/// The blocking half of `close()`. It runs on the libuv thread pool, so
/// waiting for revocations and runtime threads does not block the event
/// loop.
pub struct CloseTask {
    owner: Option<BlockingClient>,
    timeout: Option<Duration>,
}

impl Task for CloseTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        if let Some(owner) = self.owner.take() {
            owner.close(self.timeout);
        }
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

/// Prefetch outcomes on their way to JavaScript; converted on the main
/// thread, where the error objects can be built.
pub struct PrefetchResults(Vec<keystead::PrefetchOutcome>);

impl ToNapiValue for PrefetchResults {
    unsafe fn to_napi_value(
        raw_env: napi::sys::napi_env,
        results: Self,
    ) -> napi::Result<napi::sys::napi_value> {
        let env = Env::from_raw(raw_env);
        let mut outcomes = Vec::with_capacity(results.0.len());
        for outcome in results.0 {
            let error = match &outcome.result {
                Ok(()) => None,
                Err(error) => Some(crate::error::build_error(&env, error)?),
            };
            outcomes.push(PrefetchOutcome {
                reference: outcome.reference,
                ok: error.is_none(),
                error,
            });
        }
        unsafe { Vec::to_napi_value(raw_env, outcomes) }
    }
}
