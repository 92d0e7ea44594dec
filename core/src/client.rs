//! The client: the public face of the cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;

use crate::audit::{AuditEvent, AuditHook};
use crate::cache::{Cause, CacheCore, Entry, Outcome, Route, Subscriber};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, ErrorClass};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::provider::{Provider, Registry};
use crate::secret::Secret;

/// A cached, auto-refreshing secret client.
///
/// Cloning is cheap and every clone shares one cache. Reads of a fresh
/// value take no lock that a load holds and do no I/O; a miss loads the
/// value once, however many callers ask at the same moment.
///
/// A client runs its background refreshes on the tokio runtime it was built
/// in. Dropping the last clone, or calling [`Client::close`], stops them
/// and wipes every cached value.
#[derive(Clone)]
pub struct Client {
    core: Arc<CacheCore>,
}

impl Client {
    /// Starts a builder with default configuration.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Builds a client from `KEYSTEAD_CONFIG` (or defaults) and the standard
    /// environment, on the current tokio runtime.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the configuration is invalid or no tokio
    /// runtime is running.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder::default().config(Config::from_env()?).build()
    }

    /// Reads a reference, from the cache when the value is fresh.
    ///
    /// When two callers miss on the same reference at once, one backend call
    /// runs and both get its result. When the backend fails transiently and
    /// a value past its TTL but within `max_stale` is cached, that value is
    /// returned. After an authoritative failure (not found, access denied,
    /// deleted) the error is returned, and repeated until its backoff ends.
    ///
    /// # Errors
    /// An [`Error`] whose class names what failed, and which names the reference.
    pub async fn get(&self, reference: &str) -> Result<Secret, Error> {
        if let Some(hit) = self.core.fast_get(reference) {
            return hit;
        }
        let route = self.core.resolve(reference)?;
        read_route(&self.core, &route).await
    }

    /// Returns the value if it is cached and fresh, without I/O and without
    /// waiting. `None` means a [`Client::get`] would have to load it.
    pub fn get_cached(&self, reference: &str) -> Option<Secret> {
        match self.core.fast_get(reference) {
            Some(Ok(secret)) => Some(secret),
            _ => None,
        }
    }

    /// Returns a handle that reads one reference without parsing it or
    /// looking it up again. A warm read through a handle is the fastest way
    /// to read a secret.
    ///
    /// # Errors
    /// [`ErrorClass::InvalidReference`] when the reference does not parse or
    /// names an unknown scheme.
    pub fn handle(&self, reference: &str) -> Result<SecretHandle, Error> {
        let route = self.core.resolve(reference)?;
        Ok(SecretHandle::new(Arc::clone(&self.core), reference, route))
    }

    /// Loads a reference from its backend now, without waiting for any
    /// backoff. A load already in flight is shared instead of starting
    /// another. When the load fails, the cached value is kept (unless the
    /// failure is authoritative) and the error is returned.
    ///
    /// # Errors
    /// The load's error.
    pub async fn refresh(&self, reference: &str) -> Result<Secret, Error> {
        let route = self.core.resolve(reference)?;
        let loaded = route.entry.refresh(&self.core).await?;
        loaded.select(route.field.as_ref())
    }

    /// Drops a reference's cached value (and every field of it) and wipes
    /// it. Returns whether a value was cached.
    ///
    /// # Errors
    /// [`ErrorClass::InvalidReference`] when the reference does not parse.
    pub fn invalidate(&self, reference: &str) -> Result<bool, Error> {
        self.core.invalidate(reference)
    }

    /// Loads several references at once, using each backend's batch call
    /// where it has one (Secrets Manager `BatchGetSecretValue`, SSM
    /// `GetParameters`). References already fresh or already loading are
    /// left alone. Returns one outcome per reference, in order.
    pub async fn prefetch<S: AsRef<str>>(&self, references: &[S]) -> Vec<PrefetchOutcome> {
        prefetch(&self.core, references).await
    }

    /// Calls `callback` once for every new version of `reference` (the first
    /// load is not a rotation). Use it to rebuild a connection pool when a
    /// password rotates. The callback runs on a tokio worker thread of the
    /// client's runtime and should return quickly. Dropping the returned
    /// [`Subscription`] stops the calls.
    ///
    /// A subscribed reference is refreshed in the background even when no
    /// caller reads it, and is never evicted for space.
    ///
    /// # Errors
    /// [`ErrorClass::InvalidReference`] when the reference does not parse.
    pub fn subscribe<F>(&self, reference: &str, callback: F) -> Result<Subscription, Error>
    where
        F: Fn(&RotationEvent) + Send + Sync + 'static,
    {
        let route = self.core.resolve(reference)?;
        let id = self.core.next_subscriber_id();
        route.entry.subscribe(Subscriber {
            id,
            reference: reference.to_owned(),
            field: route.field.clone(),
            callback: Arc::new(callback),
        });
        route.entry.ensure_loading(&self.core);
        Ok(Subscription {
            entry: Arc::downgrade(&route.entry),
            id,
        })
    }

    /// Returns a snapshot of the cache's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.core.metrics.snapshot(self.core.entry_count())
    }

    /// Stops background refreshes, cancels loads in flight and wipes every
    /// cached value. Later reads fail with [`ErrorClass::Closed`]. Secrets
    /// already handed to callers stay valid until they are dropped. Lease
    /// revocations start in the background; [`Client::shutdown`] waits for
    /// them.
    pub fn close(&self) {
        self.core.close();
    }

    /// Closes the client like [`Client::close`] and waits until the leases
    /// it created have been revoked at their backends (for providers and
    /// leases set to revoke on close).
    pub async fn shutdown(&self) {
        self.core.close();
        self.core.wait_for_revocations().await;
    }

    /// Returns whether [`Client::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Returns the schemes this client can resolve, sorted.
    pub fn schemes(&self) -> Vec<&'static str> {
        let mut schemes = self.core.registry().schemes();
        schemes.sort_unstable();
        schemes
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("schemes", &self.schemes())
            .field("entries", &self.core.entry_count())
            .field("default_ttl", &self.core.default_ttl())
            .field("closed", &self.is_closed())
            .finish()
    }
}

async fn read_route(core: &Arc<CacheCore>, route: &Route) -> Result<Secret, Error> {
    let loaded = route.entry.read(core).await?;
    loaded.select(route.field.as_ref())
}

/// The result of prefetching one reference.
#[derive(Clone, Debug)]
pub struct PrefetchOutcome {
    /// The reference as passed.
    pub reference: String,
    /// `Ok` when the value is cached (loaded now, or already fresh or
    /// loading), or the error the load returned.
    pub result: Result<(), Error>,
}

async fn prefetch<S: AsRef<str>>(core: &Arc<CacheCore>, references: &[S]) -> Vec<PrefetchOutcome> {
    let mut results: Vec<Option<Result<(), Error>>> = vec![None; references.len()];
    let mut waits = Vec::new();
    let mut waits_on_current = Vec::new();
    let mut groups: HashMap<&'static str, Vec<(Arc<Entry>, tokio::sync::oneshot::Sender<Outcome>)>> =
        HashMap::new();
    let now = core.clock.now();

    for (index, reference) in references.iter().enumerate() {
        let route = match core.resolve(reference.as_ref()) {
            Ok(route) => route,
            Err(error) => {
                results[index] = Some(Err(error));
                continue;
            }
        };
        match route.entry.begin_external_load(now) {
            Some((load, sender)) => {
                waits.push((index, load, route.field.clone()));
                groups
                    .entry(route.entry.provider.scheme())
                    .or_default()
                    .push((Arc::clone(&route.entry), sender));
            }
            None => waits_on_current.push((index, route)),
        }
    }

    for (_, group) in groups {
        let task_core = Arc::clone(core);
        core.runtime.spawn(async move {
            let provider = Arc::clone(&group[0].0.provider);
            let batch: Vec<_> = group.iter().map(|(entry, _)| entry.reference.clone()).collect();
            Metrics::add(&task_core.metrics.backend_calls);
            let span = tracing::info_span!("keystead.prefetch", provider = provider.scheme(), count = batch.len());
            let fetched = tracing::Instrument::instrument(provider.fetch_many(&batch), span).await;
            let mut fetched = fetched.into_iter();
            for (entry, sender) in group {
                let result = fetched.next().unwrap_or_else(|| {
                    Err(Error::new(
                        ErrorClass::Internal,
                        "the provider returned fewer batch results than requested",
                    ))
                });
                let outcome = entry.install(&task_core, result, Cause::Prefetch);
                let _ = sender.send(outcome);
            }
        });
    }

    // A reference with a #field counts as prefetched only when the field
    // can be selected, so that prefetch reports what a later get would.
    for (index, load, field) in waits {
        results[index] = Some(match load.await {
            Outcome::Fresh(loaded) => loaded.select(field.as_ref()).map(|_| ()),
            Outcome::Stale(_, error) | Outcome::Failed(error) => Err(error),
        });
    }
    for (index, route) in waits_on_current {
        // Already fresh or loading: a read settles it without another call.
        results[index] = Some(read_route(core, &route).await.map(|_| ()));
    }

    references
        .iter()
        .zip(results)
        .map(|(reference, result)| PrefetchOutcome {
            reference: reference.as_ref().to_owned(),
            result: result.unwrap_or_else(|| Err(Error::new(ErrorClass::Internal, "prefetch lost a result"))),
        })
        .collect()
}

/// A handle to one reference, for the fastest repeated reads.
///
/// The handle resolves the reference once. A warm [`SecretHandle::current`]
/// is two atomic loads, one snapshot load and a reference-count increment.
pub struct SecretHandle {
    core: Arc<CacheCore>,
    reference: Box<str>,
    /// The route resolved when the handle was made. It is used for as long
    /// as its entry stays in the cache, without a snapshot load per read.
    first: Arc<Route>,
    /// The route resolved after `first`'s entry was evicted or invalidated.
    rebound: ArcSwapOption<Route>,
}

impl SecretHandle {
    fn new(core: Arc<CacheCore>, reference: &str, route: Arc<Route>) -> SecretHandle {
        SecretHandle {
            core,
            reference: reference.into(),
            first: route,
            rebound: ArcSwapOption::empty(),
        }
    }

    /// Returns the fresh value without I/O or waiting, or `None`.
    pub fn current(&self) -> Option<Secret> {
        let hit = if self.first.entry.is_detached() {
            let rebound = self.rebound.load();
            rebound.as_ref()?.try_hit(&self.core)
        } else {
            self.first.try_hit(&self.core)
        };
        match hit {
            Some(Ok(secret)) => Some(secret),
            _ => None,
        }
    }

    /// Reads the value, loading it when needed. Same rules as
    /// [`Client::get`].
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn get(&self) -> Result<Secret, Error> {
        let route = self.live_route()?;
        if let Some(hit) = route.try_hit(&self.core) {
            return hit;
        }
        read_route(&self.core, &route).await
    }

    /// The route to read: the first one while its entry is cached, else the
    /// entry now in the table for this reference.
    fn live_route(&self) -> Result<Arc<Route>, Error> {
        if !self.first.entry.is_detached() {
            return Ok(Arc::clone(&self.first));
        }
        if let Some(rebound) = self.rebound.load_full() {
            if !rebound.entry.is_detached() {
                return Ok(rebound);
            }
        }
        let fresh = self.core.resolve(&self.reference)?;
        self.rebound.store(Some(Arc::clone(&fresh)));
        Ok(fresh)
    }

    /// Returns the reference this handle reads.
    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl fmt::Debug for SecretHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHandle")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// A rotation notice: a reference has a new version.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct RotationEvent {
    /// The reference as passed to [`Client::subscribe`].
    pub reference: String,
    /// The new value (its field, when the reference has one), or the error
    /// selecting the field produced.
    pub secret: Result<Secret, Error>,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    entry: Weak<Entry>,
    id: u64,
}

impl Subscription {
    /// Stops the calls now. Same as dropping.
    pub fn cancel(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.upgrade() {
            entry.unsubscribe(self.id);
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

/// Builds a [`Client`].
///
/// ```no_run
/// # fn run() -> Result<(), keystead::Error> {
/// let config = keystead::Config::from_file("keystead.toml")?;
/// let client = keystead::Client::builder()
///     .config(config)
///     .audit_hook(|event| eprintln!("{} {}", event.kind.as_str(), event.reference))
///     .build()?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
pub struct ClientBuilder {
    config: Config,
    providers: Vec<Arc<dyn Provider>>,
    without_defaults: bool,
    clock: Option<Arc<dyn Clock>>,
    runtime: Option<tokio::runtime::Handle>,
    audit: Option<AuditHook>,
}

impl ClientBuilder {
    /// Sets the configuration.
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// Adds a provider, replacing a built-in one with the same scheme.
    pub fn provider(mut self, provider: impl Provider) -> ClientBuilder {
        self.providers.push(Arc::new(provider));
        self
    }

    /// Leaves out the built-in providers (AWS, file, env), so that only
    /// those added with [`ClientBuilder::provider`] are used.
    pub fn without_default_providers(mut self) -> ClientBuilder {
        self.without_defaults = true;
        self
    }

    /// Sets the clock. Tests use this to control the wall clock; monotonic
    /// time follows tokio's clock, which `tokio::time::pause` controls.
    pub fn clock(mut self, clock: impl Clock) -> ClientBuilder {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Runs background work on this runtime instead of the current one.
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> ClientBuilder {
        self.runtime = Some(runtime);
        self
    }

    /// Receives an event for every fetch, refresh, rotation, eviction and
    /// failure. The hook runs on the thread that caused the event.
    pub fn audit_hook<F>(mut self, hook: F) -> ClientBuilder
    where
        F: Fn(&AuditEvent) + Send + Sync + 'static,
    {
        self.audit = Some(Arc::new(hook));
        self
    }

    /// Builds the client. No backend is contacted until the first read.
    ///
    /// # Errors
    /// [`ErrorClass::Config`] when the configuration is invalid or no tokio
    /// runtime is available.
    pub fn build(self) -> Result<Client, Error> {
        self.config.check("configuration")?;
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => tokio::runtime::Handle::try_current().map_err(|_| {
                Error::config(
                    "no tokio runtime is running; build the client inside one or pass ClientBuilder::runtime",
                )
            })?,
        };

        let mut registry = Registry::default();
        if !self.without_defaults {
            add_default_providers(&mut registry, &self.config)?;
        }
        for provider in self.providers {
            registry.insert(provider);
        }

        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let core = CacheCore::new(self.config, registry, clock, runtime, self.audit)?;
        Ok(Client { core: Arc::new(core) })
    }
}

#[allow(unused_variables)]
fn add_default_providers(registry: &mut Registry, config: &Config) -> Result<(), Error> {
    #[cfg(feature = "env")]
    registry.insert(Arc::new(crate::provider::env::EnvProvider));
    #[cfg(feature = "file")]
    registry.insert(Arc::new(crate::provider::file::FileProvider));
    #[cfg(feature = "aws")]
    {
        let (secrets_manager, ssm) = crate::provider::aws::from_config(&config.aws)?;
        registry.insert(Arc::new(secrets_manager));
        registry.insert(Arc::new(ssm));
    }
    #[cfg(feature = "vault")]
    if let Some(vault) = crate::provider::vault::VaultProvider::from_config(&config.vault)? {
        registry.insert(Arc::new(vault));
    }
    Ok(())
}
