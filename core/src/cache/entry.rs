//! One cached reference: its value, its load in flight, its cached error and
//! the background task that refreshes it.
//!
//! Races, and what happens:
//! * Concurrent misses on one entry share one load. The first caller starts
//!   it and stores it in `State::inflight`, and every other caller awaits the
//!   same shared future, so all get the same value or the same error.
//! * A load runs as its own task, so a caller that gives up (a dropped
//!   future, a timeout) does not cancel the load for the others.
//! * A reader never waits on another entry: the only lock a load holds is
//!   its own entry's, and never across an `await`.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::audit::{AuditEvent, AuditEventKind};
use crate::cache::CacheCore;
use crate::clock::wall_estimate;
use crate::error::{Error, ErrorClass};
use crate::field::FieldPath;
use crate::metrics::Metrics;
use crate::provider::{Fetched, Lease, Provider};
use crate::reference::Reference;
use crate::secret::{Metadata, Secret};

/// Refresh starts at a random point between these fractions of the TTL, so
/// that many entries loaded together do not all refresh at once.
const REFRESH_WINDOW: (f64, f64) = (0.75, 0.9);

/// Values with a backend expiry are refreshed at a random point between
/// these fractions of their validity: about two thirds, the point the Vault
/// client's lease watcher uses.
const VALIDITY_REFRESH_WINDOW: (f64, f64) = (0.6, 0.7);

/// A value with a backend expiry is not handed out once less than a random
/// fraction between these bounds of its validity remains, so a caller has
/// time to use it. Ten to twenty percent is the grace the Vault client's
/// lease watcher keeps.
const EXPIRY_GRACE_WINDOW: (f64, f64) = (0.1, 0.2);

/// Upper bound of that grace, so a day-long credential is not retired hours
/// early.
const EXPIRY_GRACE_MAX: Duration = Duration::from_secs(300);

/// A renewal must move the lease end at least this far to count as an
/// extension. Vault reports lease durations in whole seconds, so a renewal
/// capped by the maximum TTL can look up to a second longer than before.
const RENEWAL_MIN_GAIN: Duration = Duration::from_secs(1);

/// Cache policy resolved for one entry.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) ttl: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) tags: Arc<BTreeMap<String, String>>,
}

/// The reason a load started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Miss,
    Refresh,
    Explicit,
    Prefetch,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Miss => "miss",
            Cause::Refresh => "refresh",
            Cause::Explicit => "explicit",
            Cause::Prefetch => "prefetch",
        }
    }
}

/// The result a load hands to the callers that waited on it.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// A new value.
    Fresh(Arc<Loaded>),
    /// The load failed transiently; the older value is still servable.
    Stale(Arc<Loaded>, Error),
    /// The load failed and there is nothing to serve.
    Failed(Error),
}

pub(crate) type SharedLoad = Shared<BoxFuture<'static, Outcome>>;

/// A loaded value and its deadlines. Immutable once built; a refresh builds
/// a new one.
pub(crate) struct Loaded {
    pub(crate) secret: Secret,
    pub(crate) refresh_at: Instant,
    /// End of the TTL: after this the value is stale.
    pub(crate) stale_at: Instant,
    /// For values with a backend expiry: the last moment to hand it out.
    pub(crate) usable_until: Option<Instant>,
    /// The backend lease and when it ends, for leased values.
    lease: Option<(Lease, Instant)>,
    version_id: Option<String>,
    fingerprint: u64,
    /// Field selections made from this value, so a hot `#field` read does
    /// not parse JSON again. Dropped with the value.
    fields: ArcSwap<Vec<(Arc<FieldPath>, Result<Secret, Error>)>>,
}

impl Loaded {
    /// Returns whether the value may still be handed out at `now`, ignoring TTL.
    pub(crate) fn within_validity(&self, now: Instant) -> bool {
        self.usable_until.is_none_or(|until| now < until)
    }

    /// Returns the value, or the selected field of it.
    pub(crate) fn select(&self, field: Option<&Arc<FieldPath>>) -> Result<Secret, Error> {
        let Some(path) = field else {
            return Ok(self.secret.clone());
        };
        let memo = self.fields.load();
        if let Some((_, result)) = memo
            .iter()
            .find(|(known, _)| Arc::ptr_eq(known, path) || **known == **path)
        {
            return result.clone();
        }
        let result = self.secret.select(path);
        self.fields.rcu(|old| {
            let mut next = Vec::with_capacity(old.len() + 1);
            next.extend(old.iter().cloned());
            next.push((Arc::clone(path), result.clone()));
            next
        });
        result
    }
}

impl Loaded {
    /// This value with its lease extended to `now + remaining`.
    fn renewed(&self, core: &CacheCore, mut lease: Lease, now: Instant, remaining: Duration) -> Loaded {
        lease.duration = remaining;
        let (until, renew_at) = validity_deadlines(now, remaining);
        let mut metadata = self.secret.metadata().clone();
        metadata.expires_at = core.clock.wall().checked_add(remaining);
        metadata.refresh_at = Some(wall_estimate(core.clock.as_ref(), renew_at));
        Loaded {
            secret: self.secret.with_metadata(metadata),
            refresh_at: renew_at,
            stale_at: until,
            usable_until: Some(until),
            lease: Some((lease, later(now, remaining))),
            version_id: self.version_id.clone(),
            fingerprint: self.fingerprint,
            fields: ArcSwap::from_pointee(Vec::new()),
        }
    }
}

/// Returns the last moment to hand out a value valid for `valid_for` from
/// `now`, and when to refresh or renew it.
fn validity_deadlines(now: Instant, valid_for: Duration) -> (Instant, Instant) {
    let grace = valid_for.mul_f64(jitter(EXPIRY_GRACE_WINDOW)).min(EXPIRY_GRACE_MAX);
    let until = later(now, valid_for.saturating_sub(grace));
    let renew_at = later(now, valid_for.mul_f64(jitter(VALIDITY_REFRESH_WINDOW)));
    (until, renew_at.min(until))
}

/// A load failure kept until its backoff ends.
struct CachedError {
    error: Error,
    retry_at: Instant,
}

/// A rotation listener.
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) reference: String,
    pub(crate) field: Option<Arc<FieldPath>>,
    pub(crate) callback: Arc<dyn Fn(&crate::client::RotationEvent) + Send + Sync>,
}

#[derive(Default)]
struct State {
    error: Option<CachedError>,
    failures: u32,
    inflight: Option<(SharedLoad, Option<AbortHandle>)>,
    /// Whether the load in flight is a background refresh, during which
    /// readers past the TTL get the older value instead of waiting.
    inflight_is_refresh: bool,
    refresher_running: bool,
    /// A lease renewal is running.
    renewing: bool,
    renew_failures: u32,
    renew_retry_at: Option<Instant>,
    subscribers: Vec<Subscriber>,
    /// Identity of the last version loaded, kept after the value itself is
    /// dropped so that a value coming back after an outage is recognised.
    last_fingerprint: Option<u64>,
    /// Raw reference strings routed to this entry, removed on eviction.
    pub(crate) routes: Vec<Box<str>>,
}

/// One cached reference.
pub(crate) struct Entry {
    pub(crate) key: Arc<str>,
    pub(crate) reference: Reference,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) policy: Policy,
    current: ArcSwapOption<Loaded>,
    /// Whether `current` may be handed out without looking at the clock.
    /// The refresher clears it at the end of the TTL; only values with a
    /// backend expiry also check the clock on every read.
    usable: AtomicBool,
    /// LRU stamp: higher was read more recently.
    pub(crate) stamp: AtomicU64,
    read_since_load: AtomicBool,
    detached: AtomicBool,
    state: Mutex<State>,
    wake: Notify,
}

enum Decision {
    Serve(Arc<Loaded>),
    ServeStale(Arc<Loaded>),
    Fail(Error),
    Wait(SharedLoad),
}

impl Entry {
    pub(crate) fn new(
        key: Arc<str>,
        reference: Reference,
        provider: Arc<dyn Provider>,
        policy: Policy,
        stamp: u64,
    ) -> Entry {
        Entry {
            key,
            reference,
            provider,
            policy,
            current: ArcSwapOption::empty(),
            usable: AtomicBool::new(false),
            stamp: AtomicU64::new(stamp),
            read_since_load: AtomicBool::new(false),
            detached: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }
    }

    /// Returns the current value (or its field) without I/O or locks when
    /// it is fresh.
    pub(crate) fn try_hit(&self, core: &CacheCore, field: Option<&Arc<FieldPath>>) -> Option<Result<Secret, Error>> {
        if !self.usable.load(Ordering::Acquire) {
            return None;
        }
        let current = self.current.load();
        let loaded = current.as_ref()?;
        if loaded.usable_until.is_some() && !loaded.within_validity(core.clock.now()) {
            return None;
        }
        self.touch(core);
        Some(loaded.select(field))
    }

    /// Marks the entry as read, for LRU order and refresh-ahead. Writes only
    /// when something changes, so a hot entry's cache line stays shared.
    pub(crate) fn touch(&self, core: &CacheCore) {
        let tick = core.tick.load(Ordering::Relaxed);
        if self.stamp.load(Ordering::Relaxed) != tick {
            let next = core.tick.fetch_add(1, Ordering::Relaxed) + 1;
            self.stamp.store(next, Ordering::Relaxed);
        }
        if !self.read_since_load.load(Ordering::Relaxed) {
            self.read_since_load.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Acquire)
    }

    pub(crate) fn has_subscribers(&self) -> bool {
        !self.state.lock().subscribers.is_empty()
    }

    pub(crate) fn add_route(&self, raw: &str, limit: usize) -> bool {
        let mut state = self.state.lock();
        if state.routes.len() >= limit {
            return false;
        }
        state.routes.push(raw.into());
        true
    }

    pub(crate) fn take_routes(&self) -> Vec<Box<str>> {
        std::mem::take(&mut self.state.lock().routes)
    }

    /// Reads the value, loading it when needed.
    pub(crate) async fn read(self: &Arc<Self>, core: &Arc<CacheCore>) -> Result<Arc<Loaded>, Error> {
        if core.is_closed() {
            return Err(Error::closed());
        }
        let decision = {
            let mut state = self.state.lock();
            self.decide(core, core.clock.now(), &mut state)
        };
        match decision {
            Decision::Serve(loaded) => {
                core.metrics.hits.increment();
                self.touch(core);
                Ok(loaded)
            }
            Decision::ServeStale(loaded) => {
                self.record_stale_serve(core);
                self.touch(core);
                Ok(loaded)
            }
            Decision::Fail(error) => Err(error),
            Decision::Wait(load) => {
                Metrics::add(&core.metrics.misses);
                self.touch(core);
                match load.await {
                    Outcome::Fresh(loaded) => Ok(loaded),
                    Outcome::Stale(loaded, _) => {
                        self.record_stale_serve(core);
                        Ok(loaded)
                    }
                    Outcome::Failed(error) => Err(error),
                }
            }
        }
    }

    fn record_stale_serve(&self, core: &CacheCore) {
        Metrics::add(&core.metrics.stale_serves);
        // Debug, not warn: the failed load that causes stale serving is
        // logged once at warn, and a busy reader would repeat this line.
        tracing::debug!(reference = %self.key, "serving a stale value while the backend is failing or a refresh is running");
    }

    fn decide(self: &Arc<Self>, core: &Arc<CacheCore>, now: Instant, state: &mut State) -> Decision {
        let current = self.current.load_full();
        let mut servable_stale = None;

        if let Some(loaded) = current.filter(|loaded| loaded.within_validity(now)) {
            if now < loaded.stale_at {
                return Decision::Serve(loaded);
            }
            let within_max_stale = now < later(loaded.stale_at, self.policy.max_stale);
            let failing = state.error.as_ref().is_some_and(|cached| cached.error.is_transient());
            let refreshing = state.inflight.is_some() && state.inflight_is_refresh;
            if within_max_stale && (failing || refreshing) {
                if failing && state.inflight.is_none() {
                    let retry_due = state
                        .error
                        .as_ref()
                        .is_some_and(|cached| now >= cached.retry_at);
                    if retry_due {
                        let _ = self.start_load(core, Cause::Refresh, state);
                    }
                }
                return Decision::ServeStale(loaded);
            }
            if within_max_stale {
                servable_stale = Some(loaded);
            }
        }

        if let Some(cached) = &state.error {
            if now < cached.retry_at {
                return match servable_stale {
                    Some(loaded) => Decision::ServeStale(loaded),
                    None => Decision::Fail(cached.error.clone()),
                };
            }
        }
        if let Some((load, _)) = &state.inflight {
            return Decision::Wait(load.clone());
        }
        Decision::Wait(self.start_load(core, Cause::Miss, state))
    }

    /// Forces a load now, sharing one already in flight.
    pub(crate) async fn refresh(self: &Arc<Self>, core: &Arc<CacheCore>) -> Result<Arc<Loaded>, Error> {
        if core.is_closed() {
            return Err(Error::closed());
        }
        let load = {
            let mut state = self.state.lock();
            match &state.inflight {
                Some((load, _)) => load.clone(),
                None => self.start_load(core, Cause::Explicit, &mut state),
            }
        };
        match load.await {
            Outcome::Fresh(loaded) => Ok(loaded),
            Outcome::Stale(_, error) | Outcome::Failed(error) => Err(error),
        }
    }

    /// Starts a background load if none is running and the entry is empty;
    /// used by subscribe so that rotations are noticed without a read.
    pub(crate) fn ensure_loading(self: &Arc<Self>, core: &Arc<CacheCore>) {
        let mut state = self.state.lock();
        if self.current.load().is_none() && state.inflight.is_none() {
            let _ = self.start_load(core, Cause::Miss, &mut state);
        }
    }

    /// Registers a shared future fed from outside, for batch loads. Returns
    /// `None` when a load is already running or the value is fresh.
    pub(crate) fn begin_external_load(
        &self,
        now: Instant,
    ) -> Option<(SharedLoad, tokio::sync::oneshot::Sender<Outcome>)> {
        let mut state = self.state.lock();
        if state.inflight.is_some() {
            return None;
        }
        if self
            .current
            .load()
            .as_ref()
            .is_some_and(|loaded| loaded.within_validity(now) && now < loaded.stale_at)
        {
            return None;
        }
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let load = receiver
            .map(|received| received.unwrap_or_else(|_| Outcome::Failed(Error::closed())))
            .boxed()
            .shared();
        state.inflight = Some((load.clone(), None));
        state.inflight_is_refresh = false;
        Some((load, sender))
    }

    fn start_load(self: &Arc<Self>, core: &Arc<CacheCore>, cause: Cause, state: &mut State) -> SharedLoad {
        if cause != Cause::Miss {
            Metrics::add(&core.metrics.refreshes);
        }
        let entry = Arc::clone(self);
        let task_core = Arc::clone(core);
        let task = core.runtime.spawn(async move { entry.run_load(&task_core, cause).await });
        let abort = task.abort_handle();
        let load = task
            .map(|joined| joined.unwrap_or_else(|_| Outcome::Failed(Error::closed())))
            .boxed()
            .shared();
        state.inflight = Some((load.clone(), Some(abort)));
        state.inflight_is_refresh = cause == Cause::Refresh;
        load
    }

    async fn run_load(self: Arc<Self>, core: &Arc<CacheCore>, cause: Cause) -> Outcome {
        let span = tracing::info_span!("keystead.load", reference = %self.key, cause = cause.as_str());
        let started = core.clock.now();
        Metrics::add(&core.metrics.backend_calls);
        let result = self.provider.fetch(&self.reference).instrument(span).await;
        core.metrics
            .record_load_latency(core.clock.now().saturating_duration_since(started));
        self.install(core, result, cause)
    }

    /// Stores the result of a load and decides what its waiters get.
    pub(crate) fn install(
        self: &Arc<Self>,
        core: &Arc<CacheCore>,
        result: Result<Fetched, Error>,
        cause: Cause,
    ) -> Outcome {
        let now = core.clock.now();
        let audit;
        let mut notify = Vec::new();
        let mut aliases = Vec::new();

        let outcome = {
            let mut state = self.state.lock();
            state.inflight = None;
            match result {
                Ok(mut fetched) => {
                    aliases = std::mem::take(&mut fetched.aliases);
                    let (loaded, kind) = self.store_value(core, fetched, now, &mut state);
                    if kind == AuditEventKind::Rotated {
                        Metrics::add(&core.metrics.rotations);
                        notify = self.rotation_events(&state, &loaded);
                    }
                    tracing::info!(reference = %self.key, event = kind.as_str(), cause = cause.as_str(), "loaded");
                    audit = Some(self.audit_event(core, kind, loaded.version_id.clone(), None));
                    self.ensure_refresher(core, &mut state);
                    Outcome::Fresh(loaded)
                }
                Err(error) => {
                    let error = error.for_reference(&self.key);
                    core.metrics.record_error(error.class());
                    audit = Some(self.audit_event(core, AuditEventKind::Failed, None, Some(error.class())));
                    self.store_error(core, error, now, &mut state)
                }
            }
        };

        self.wake.notify_one();
        if !aliases.is_empty() && !self.is_detached() {
            core.add_aliases(self, &aliases);
        }
        if let Some(event) = audit {
            core.emit_audit(&event);
        }
        for (subscriber, event) in notify {
            let call = AssertUnwindSafe(|| subscriber(&event));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!(reference = %self.key, "a rotation subscriber panicked; the panic was caught");
            }
        }
        outcome
    }

    fn store_value(
        &self,
        core: &CacheCore,
        fetched: Fetched,
        now: Instant,
        state: &mut State,
    ) -> (Arc<Loaded>, AuditEventKind) {
        let fingerprint = fingerprint(fetched.version_id.as_deref(), fetched.value.expose_bytes());
        let kind = match state.last_fingerprint {
            None => AuditEventKind::Fetched,
            Some(last) if last == fingerprint => AuditEventKind::Refreshed,
            Some(_) => AuditEventKind::Rotated,
        };
        let previous = self.current.load_full();
        let loaded = Arc::new(self.build_loaded(core, fetched, now, fingerprint, previous.as_deref()));

        state.error = None;
        state.failures = 0;
        state.last_fingerprint = Some(fingerprint);
        if !self.policy.ttl.is_zero() && !self.is_detached() {
            self.current.store(Some(Arc::clone(&loaded)));
            self.read_since_load.store(false, Ordering::Relaxed);
            self.usable.store(true, Ordering::Release);
        }
        (loaded, kind)
    }

    fn build_loaded(
        &self,
        core: &CacheCore,
        mut fetched: Fetched,
        now: Instant,
        fingerprint: u64,
        previous: Option<&Loaded>,
    ) -> Loaded {
        let ttl = self.policy.ttl;
        let mut refresh_at = later(now, ttl.mul_f64(jitter(REFRESH_WINDOW)));
        let mut stale_at = later(now, ttl);
        let mut usable_until = None;
        if let Some(valid_for) = fetched.valid_for {
            let (until, renew_at) = validity_deadlines(now, valid_for);
            usable_until = Some(until);
            refresh_at = refresh_at.min(renew_at);
            stale_at = stale_at.min(until);
        }
        let lease = fetched.lease.take().map(|lease| {
            let end = later(now, lease.duration);
            // A leased value lives as long as its lease, not the cache TTL:
            // re-reading it on the TTL would mint a new lease every time.
            let (until, renew_at) = validity_deadlines(now, lease.duration);
            usable_until = Some(until);
            stale_at = until;
            refresh_at = renew_at;
            (lease, end)
        });

        let clock = core.clock.as_ref();
        let metadata = Metadata {
            reference: self.key.to_string(),
            provider: self.provider.scheme().to_owned(),
            name: fetched.name,
            arn: fetched.arn,
            version_id: fetched.version_id.clone(),
            version_stages: fetched.version_stages,
            version_number: fetched.version_number,
            created_at: fetched.created_at,
            fetched_at: Some(clock.wall()),
            refresh_at: Some(wall_estimate(clock, refresh_at)),
            expires_at: lease
                .as_ref()
                .map(|(lease, _)| lease.duration)
                .or(fetched.valid_for)
                .and_then(|valid_for| clock.wall().checked_add(valid_for)),
            field: None,
        };

        // A refresh that returns the same bytes keeps the existing buffer,
        // so the value is not copied again and handles keep their memo.
        let same_bytes = previous.filter(|old| old.fingerprint == fingerprint);
        let secret = match same_bytes {
            Some(old) if old.secret.expose_bytes() == fetched.value.expose_bytes() => {
                old.secret.with_metadata(metadata)
            }
            _ => Secret::new(fetched.value, metadata),
        };

        Loaded {
            secret,
            refresh_at,
            stale_at,
            usable_until,
            lease,
            version_id: fetched.version_id,
            fingerprint,
            fields: ArcSwap::from_pointee(Vec::new()),
        }
    }

    fn store_error(&self, core: &CacheCore, error: Error, now: Instant, state: &mut State) -> Outcome {
        state.failures = state.failures.saturating_add(1);
        let delay = core.backoff.delay(state.failures);
        state.error = Some(CachedError {
            error: error.clone(),
            retry_at: later(now, delay),
        });

        if error.is_transient() {
            let servable = self.current.load_full().filter(|loaded| {
                loaded.within_validity(now) && now < later(loaded.stale_at, self.policy.max_stale)
            });
            tracing::warn!(
                reference = %self.key,
                class = %error.class(),
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                serving_stale = servable.is_some(),
                "load failed; will retry"
            );
            return match servable {
                Some(loaded) => Outcome::Stale(loaded, error),
                None => Outcome::Failed(error),
            };
        }

        // An authoritative response: the secret is gone or the caller lost
        // access, so the old value must stop being served.
        tracing::error!(reference = %self.key, class = %error.class(), "load failed; dropping the cached value");
        if self.current.swap(None).is_some() {
            Metrics::add(&core.metrics.evictions);
        }
        self.usable.store(false, Ordering::Release);
        Outcome::Failed(error)
    }

    fn rotation_events(
        &self,
        state: &State,
        loaded: &Arc<Loaded>,
    ) -> Vec<(Arc<dyn Fn(&crate::client::RotationEvent) + Send + Sync>, crate::client::RotationEvent)> {
        state
            .subscribers
            .iter()
            .map(|subscriber| {
                let event = crate::client::RotationEvent {
                    reference: subscriber.reference.clone(),
                    secret: loaded.select(subscriber.field.as_ref()),
                };
                (Arc::clone(&subscriber.callback), event)
            })
            .collect()
    }

    fn audit_event(
        &self,
        core: &CacheCore,
        kind: AuditEventKind,
        version_id: Option<String>,
        error_class: Option<ErrorClass>,
    ) -> AuditEvent {
        AuditEvent {
            kind,
            reference: self.key.to_string(),
            version_id,
            error_class,
            tags: Arc::clone(&self.policy.tags),
            at: core.clock.wall(),
        }
    }

    pub(crate) fn subscribe(&self, subscriber: Subscriber) {
        self.state.lock().subscribers.push(subscriber);
        self.wake.notify_one();
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        self.state.lock().subscribers.retain(|subscriber| subscriber.id != id);
    }

    /// Removes the entry from service: wipes its value and stops its
    /// refresher. With `cancel_load` (on close) it also aborts a load in
    /// flight. Without it, callers already waiting on that load still get
    /// its result, which is no longer stored. Returns whether a value was
    /// dropped.
    pub(crate) fn detach(&self, core: &CacheCore, cancel_load: bool) -> bool {
        self.detached.store(true, Ordering::Release);
        self.usable.store(false, Ordering::Release);
        let dropped = self.current.swap(None).is_some();
        {
            let mut state = self.state.lock();
            if cancel_load {
                if let Some((_, Some(abort))) = state.inflight.take() {
                    abort.abort();
                }
            }
            state.subscribers.clear();
        }
        self.wake.notify_one();
        if dropped {
            Metrics::add(&core.metrics.evictions);
            let event = self.audit_event(core, AuditEventKind::Evicted, None, None);
            core.emit_audit(&event);
        }
        dropped
    }

    fn start_renewal(self: &Arc<Self>, core: &Arc<CacheCore>, loaded: &Arc<Loaded>, state: &mut State) {
        state.renewing = true;
        Metrics::add(&core.metrics.refreshes);
        let entry = Arc::clone(self);
        let task_core = Arc::clone(core);
        let loaded = Arc::clone(loaded);
        core.runtime.spawn(async move { entry.run_renewal(&task_core, loaded).await });
    }

    /// Renews the lease of `loaded`. A renewal that extends the lease keeps
    /// the value and moves its deadlines. A renewal that does not extend it
    /// (the maximum TTL is near) or finds the lease gone starts a fetch of a
    /// new value while the old one is still valid.
    async fn run_renewal(self: Arc<Self>, core: &Arc<CacheCore>, loaded: Arc<Loaded>) {
        let Some((lease, old_end)) = loaded.lease.clone() else {
            self.state.lock().renewing = false;
            return;
        };
        let span = tracing::info_span!("keystead.renew", reference = %self.key);
        Metrics::add(&core.metrics.backend_calls);
        let result = self.provider.renew(&lease, lease.duration).instrument(span).await;
        let now = core.clock.now();

        let mut state = self.state.lock();
        state.renewing = false;
        let still_current = self
            .current
            .load()
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, &loaded));
        if !still_current || self.is_detached() {
            return;
        }
        match result {
            Ok(remaining) if later(now, remaining) > later(old_end, RENEWAL_MIN_GAIN) => {
                state.renew_failures = 0;
                state.renew_retry_at = None;
                let renewed = Arc::new(loaded.renewed(core, lease, now, remaining));
                self.current.store(Some(renewed));
                self.usable.store(true, Ordering::Release);
                tracing::info!(reference = %self.key, remaining_s = remaining.as_secs(), "lease renewed");
            }
            Ok(_) => {
                tracing::info!(reference = %self.key, "lease reached its maximum TTL; fetching a new value");
                let _ = self.start_load(core, Cause::Refresh, &mut state);
            }
            Err(error) if error.is_transient() => {
                state.renew_failures = state.renew_failures.saturating_add(1);
                let delay = core.backoff.delay(state.renew_failures);
                state.renew_retry_at = Some(later(now, delay));
                tracing::warn!(reference = %self.key, class = %error.class(), "lease renewal failed; will retry");
            }
            Err(error) => {
                tracing::info!(reference = %self.key, class = %error.class(), "lease cannot be renewed; fetching a new value");
                let _ = self.start_load(core, Cause::Refresh, &mut state);
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// The lease of the current value, when the client should revoke it on
    /// close.
    pub(crate) fn lease_to_revoke(&self) -> Option<Lease> {
        let current = self.current.load();
        let (lease, _) = current.as_ref()?.lease.as_ref()?;
        lease.revoke_on_close.then(|| lease.clone())
    }

    fn ensure_refresher(self: &Arc<Self>, core: &Arc<CacheCore>, state: &mut State) {
        if state.refresher_running || self.policy.ttl.is_zero() || self.is_detached() {
            return;
        }
        state.refresher_running = true;
        let entry = Arc::downgrade(self);
        let weak_core = Arc::downgrade(core);
        core.runtime.spawn(refresher(entry, weak_core));
    }

    /// Runs the due background steps and returns when to look again.
    fn plan(self: &Arc<Self>, core: &Arc<CacheCore>, now: Instant) -> Option<Instant> {
        let mut state = self.state.lock();
        if self.is_detached() || core.is_closed() {
            state.refresher_running = false;
            return None;
        }

        let Some(loaded) = self.current.load_full() else {
            // Nothing cached. Readers drive loads, except for a subscribed
            // entry, which keeps retrying so that recovery is noticed.
            let retry_at = state.error.as_ref().map(|cached| cached.retry_at);
            if !state.subscribers.is_empty() && state.inflight.is_none() {
                match retry_at {
                    Some(at) if now < at => return Some(at),
                    _ => {
                        let _ = self.start_load(core, Cause::Refresh, &mut state);
                    }
                }
            }
            return Some(far_future(now));
        };

        let unusable_at = loaded.usable_until.map_or(loaded.stale_at, |until| until.min(loaded.stale_at));
        if now >= unusable_at {
            self.usable.store(false, Ordering::Release);
        }

        let drop_at = loaded
            .usable_until
            .map_or(later(loaded.stale_at, self.policy.max_stale), |until| {
                until.min(later(loaded.stale_at, self.policy.max_stale))
            });
        if now >= drop_at {
            // Past its maximum staleness (or its backend expiry): wipe it.
            if self.current.swap(None).is_some() {
                Metrics::add(&core.metrics.evictions);
                let event = self.audit_event(core, AuditEventKind::Evicted, loaded.version_id.clone(), None);
                drop(state);
                core.emit_audit(&event);
                return Some(far_future(now));
            }
        }

        let refresh_needed = self.read_since_load.load(Ordering::Relaxed)
            || !state.subscribers.is_empty()
            || loaded.usable_until.is_some();
        let refresh_at = match &state.error {
            Some(cached) if cached.error.is_transient() => cached.retry_at,
            _ => loaded.refresh_at,
        };
        let renewable = loaded.lease.as_ref().is_some_and(|(lease, _)| lease.renewable);
        let refresh_at = match state.renew_retry_at {
            Some(retry_at) if renewable => retry_at,
            _ => refresh_at,
        };
        let busy = state.inflight.is_some() || state.renewing;
        if refresh_needed && !busy && now >= refresh_at {
            if renewable {
                self.start_renewal(core, &loaded, &mut state);
            } else {
                let _ = self.start_load(core, Cause::Refresh, &mut state);
            }
        }

        let mut next = drop_at;
        if self.usable.load(Ordering::Relaxed) {
            next = next.min(unusable_at);
        }
        if !busy && refresh_at > now {
            next = next.min(refresh_at);
        }
        Some(next)
    }
}

/// About thirty years: further than any cache deadline needs, and well
/// inside what `Instant` and tokio's timer wheel can represent.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

fn far_future(now: Instant) -> Instant {
    now.checked_add(FAR_FUTURE).unwrap_or(now)
}

/// `at + duration`, capped at thirty years from `at`, so that a huge TTL
/// from configuration or a backend cannot overflow `Instant`.
fn later(at: Instant, duration: Duration) -> Instant {
    at.checked_add(duration.min(FAR_FUTURE)).unwrap_or_else(|| far_future(at))
}

fn jitter((low, high): (f64, f64)) -> f64 {
    low + (high - low) * fastrand::f64()
}

/// Computes the identity of a version from its id and a keyed hash of its
/// bytes. The hash key is random per process, so the fingerprint reveals
/// nothing about the value outside this process.
fn fingerprint(version_id: Option<&str>, bytes: &[u8]) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(RandomState::new).build_hasher();
    version_id.hash(&mut hasher);
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Runs the per-entry background task: flips the entry to stale at the end
/// of its TTL, refreshes it ahead of that, retries with backoff, and wipes it
/// past its maximum staleness. It holds only weak references, so a dropped
/// entry or client ends it.
async fn refresher(entry: Weak<Entry>, core: Weak<CacheCore>) {
    loop {
        let (Some(strong_entry), Some(strong_core)) = (entry.upgrade(), core.upgrade()) else {
            return;
        };
        let now = strong_core.clock.now();
        let Some(next) = strong_entry.plan(&strong_core, now) else {
            return;
        };
        let sleep = strong_core.clock.sleep_until(next);
        let wake = Arc::clone(&strong_entry);
        drop(strong_core);
        drop(strong_entry);

        tokio::select! {
            () = sleep => {}
            () = wake.wake.notified() => {}
        }
    }
}
