//! The cache: a table from reference strings to entries, bounded by LRU.
//!
//! Lookups by the exact string a caller passed take one read lock and one
//! hash probe; only the first read of a new spelling parses it. Entries are
//! created under the write lock, which is never held across I/O or a call
//! into user code.

mod entry;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::audit::{AuditEvent, AuditHook};
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::field::FieldPath;
use crate::metrics::Metrics;
use crate::provider::{Provider, Registry};
use crate::reference::Reference;
use crate::secret::Secret;

pub(crate) use entry::{Cause, Entry, Outcome, Policy, Subscriber};

/// How many spellings of one reference (fields, aliases, query orders) are
/// remembered for the fast path. Beyond this a spelling is parsed on every
/// read, which keeps the table bounded when callers build references from
/// untrusted input.
const MAX_ROUTES_PER_ENTRY: usize = 64;

/// A reference string resolved to an entry and an optional field.
pub(crate) struct Route {
    pub(crate) entry: Arc<Entry>,
    pub(crate) field: Option<Arc<FieldPath>>,
}

impl Route {
    /// Returns the fresh value without I/O, or `None`.
    pub(crate) fn try_hit(&self, core: &CacheCore) -> Option<Result<Secret, Error>> {
        let hit = self.entry.try_hit(core, self.field.as_ref())?;
        core.metrics.hits.increment();
        Some(hit)
    }
}

/// The lookup table. Readers load an immutable snapshot without locking;
/// writers, which run only on a miss, copy it, change the copy and publish
/// it. Keys are reference-counted so a copy allocates only the maps.
#[derive(Clone, Default)]
struct Table {
    routes: HashMap<Arc<str>, Arc<Route>, RandomState>,
    entries: HashMap<Arc<str>, Arc<Entry>, RandomState>,
}

/// A fast hasher with a random per-process seed: the table is probed on
/// every read, and SipHash would be a third of a warm read's cost.
type RandomState = foldhash::fast::RandomState;

/// Everything a client shares between its handles and background tasks.
pub(crate) struct CacheCore {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) metrics: Metrics,
    pub(crate) backoff: Backoff,
    /// LRU clock, advanced by reads that change which entry was read last.
    pub(crate) tick: AtomicU64,
    registry: Registry,
    config: Config,
    overrides: HashMap<String, usize>,
    table: ArcSwap<Table>,
    /// Serializes writers of `table`.
    table_writer: Mutex<()>,
    audit: Option<AuditHook>,
    closed: AtomicBool,
    next_subscriber: AtomicU64,
    revocations: parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl CacheCore {
    pub(crate) fn new(
        config: Config,
        registry: Registry,
        clock: Arc<dyn Clock>,
        runtime: tokio::runtime::Handle,
        audit: Option<AuditHook>,
    ) -> Result<CacheCore, Error> {
        let mut overrides = HashMap::new();
        for (index, secret) in config.secrets.iter().enumerate() {
            let reference = Reference::parse(&secret.reference)?;
            let provider = registry.for_reference(&reference)?;
            provider.validate(&reference)?;
            overrides.insert(provider.cache_key(&reference), index);
        }
        let backoff = Backoff {
            base: config.cache.error_backoff_base,
            max: config.cache.error_backoff_max,
        };
        Ok(CacheCore {
            clock,
            runtime,
            metrics: Metrics::default(),
            backoff,
            tick: AtomicU64::new(0),
            registry,
            config,
            overrides,
            table: ArcSwap::from_pointee(Table::default()),
            table_writer: Mutex::new(()),
            audit,
            closed: AtomicBool::new(false),
            next_subscriber: AtomicU64::new(1),
            revocations: parking_lot::Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn next_subscriber_id(&self) -> u64 {
        self.next_subscriber.fetch_add(1, Ordering::Relaxed)
    }

    /// Returns the fresh value for an exact reference string seen before, or `None`.
    pub(crate) fn fast_get(&self, raw: &str) -> Option<Result<Secret, Error>> {
        let table = self.table.load();
        let route = table.routes.get(raw)?;
        route.try_hit(self)
    }

    /// Changes the table under the writer lock and publishes the result.
    fn update_table<R>(&self, change: impl FnOnce(&mut Table) -> R) -> R {
        let _writer = self.table_writer.lock();
        let mut next = Table::clone(&self.table.load());
        let result = change(&mut next);
        self.table.store(Arc::new(next));
        result
    }

    /// Finds or creates the entry for a reference string.
    pub(crate) fn resolve(self: &Arc<Self>, raw: &str) -> Result<Arc<Route>, Error> {
        if self.is_closed() {
            return Err(Error::closed().for_reference(raw));
        }
        if let Some(route) = self.table.load().routes.get(raw) {
            if !route.entry.is_detached() {
                return Ok(Arc::clone(route));
            }
        }

        let reference = Reference::parse(raw)?;
        let provider = Arc::clone(self.registry.for_reference(&reference)?);
        provider
            .validate(&reference)
            .map_err(|error| error.for_reference(raw))?;
        let field = reference.field_path().cloned().map(Arc::new);
        let base = reference.without_field();
        let key = provider.cache_key(&base);

        let (route, evicted) = self.update_table(|table| {
            if self.is_closed() {
                return Err(Error::closed().for_reference(raw));
            }
            let existing = table.entries.get(key.as_str()).cloned().or_else(|| {
                table
                    .routes
                    .get(key.as_str())
                    .filter(|route| !route.entry.is_detached())
                    .map(|route| Arc::clone(&route.entry))
            });
            let mut evicted = Vec::new();
            let entry = match existing {
                Some(entry) => entry,
                None => {
                    let entry = self.create_entry(&key, base, provider);
                    table.entries.insert(Arc::clone(&entry.key), Arc::clone(&entry));
                    evicted = self.evict_over_capacity(table, &entry);
                    entry
                }
            };
            let route = Arc::new(Route { entry, field });
            if route.entry.add_route(raw, MAX_ROUTES_PER_ENTRY) {
                table.routes.insert(raw.into(), Arc::clone(&route));
            }
            Ok((route, evicted))
        })?;
        for victim in evicted {
            victim.detach(self, false);
        }
        Ok(route)
    }

    fn create_entry(&self, key: &str, reference: Reference, provider: Arc<dyn Provider>) -> Arc<Entry> {
        let settings = self.overrides.get(key).map(|index| &self.config.secrets[*index]);
        let provider_ttl = match provider.scheme() {
            "file" => self.config.file.ttl,
            "env" => self.config.env.ttl,
            _ => None,
        };
        let ttl = settings
            .and_then(|secret| secret.ttl)
            .or(provider_ttl)
            .or_else(|| provider.default_ttl())
            .unwrap_or(self.config.cache.ttl);
        let max_stale = settings
            .and_then(|secret| secret.max_stale)
            .unwrap_or(self.config.cache.max_stale);
        let tags = settings.map(|secret| secret.tags.clone()).unwrap_or_default();
        let policy = Policy {
            ttl,
            max_stale,
            tags: Arc::new(tags),
        };
        let stamp = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        Arc::new(Entry::new(key.into(), reference, provider, policy, stamp))
    }

    /// Removes least recently read entries until the table fits. Entries
    /// with subscribers are kept, because a subscriber must keep hearing
    /// about rotations.
    fn evict_over_capacity(&self, table: &mut Table, keep: &Arc<Entry>) -> Vec<Arc<Entry>> {
        let mut victims = Vec::new();
        while table.entries.len() > self.config.cache.max_entries {
            let victim = table
                .entries
                .values()
                .filter(|entry| !Arc::ptr_eq(entry, keep) && !entry.has_subscribers())
                .min_by_key(|entry| entry.stamp.load(Ordering::Relaxed))
                .cloned();
            let Some(victim) = victim else {
                break;
            };
            remove_entry(table, &victim);
            tracing::debug!(reference = %victim.key, "evicted the least recently read entry");
            victims.push(victim);
        }
        victims
    }

    /// Routes the alias keys a provider reported to `entry`, unless another
    /// live entry already owns them.
    pub(crate) fn add_aliases(&self, entry: &Arc<Entry>, aliases: &[String]) {
        self.update_table(|table| Self::route_aliases(table, entry, aliases));
    }

    fn route_aliases(table: &mut Table, entry: &Arc<Entry>, aliases: &[String]) {
        for alias in aliases {
            if table.entries.contains_key(alias.as_str()) {
                continue;
            }
            let owned = table
                .routes
                .get(alias.as_str())
                .is_some_and(|route| !route.entry.is_detached());
            if owned || !entry.add_route(alias, MAX_ROUTES_PER_ENTRY) {
                continue;
            }
            let route = Arc::new(Route {
                entry: Arc::clone(entry),
                field: None,
            });
            table.routes.insert(alias.as_str().into(), route);
        }
    }

    /// Drops a reference's cached value. Returns whether one was cached.
    pub(crate) fn invalidate(self: &Arc<Self>, raw: &str) -> Result<bool, Error> {
        let route = self.resolve(raw)?;
        self.update_table(|table| remove_entry(table, &route.entry));
        Ok(route.entry.detach(self, false))
    }

    /// Stops every background task and wipes every cached value.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let entries: Vec<Arc<Entry>> = self.update_table(|table| {
            table.routes.clear();
            table.entries.drain().map(|(_, entry)| entry).collect()
        });
        let mut revocations = Vec::new();
        for entry in entries {
            if let Some(lease) = entry.lease_to_revoke() {
                let provider = Arc::clone(&entry.provider);
                let key = Arc::clone(&entry.key);
                let revoke = async move {
                    match provider.revoke(&lease).await {
                        Ok(()) => tracing::info!(reference = %key, "lease revoked on close"),
                        Err(error) => tracing::warn!(reference = %key, class = %error.class(), "lease revocation on close failed"),
                    }
                };
                revocations.push(self.runtime.spawn(revoke));
            }
            entry.detach(self, true);
        }
        self.revocations.lock().extend(revocations);
    }

    /// Waits for the lease revocations that [`CacheCore::close`] started.
    pub(crate) async fn wait_for_revocations(&self) {
        let pending = std::mem::take(&mut *self.revocations.lock());
        for task in pending {
            let _ = task.await;
        }
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.table.load().entries.len()
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn emit_audit(&self, event: &AuditEvent) {
        if let Some(hook) = &self.audit {
            let call = std::panic::AssertUnwindSafe(|| hook(event));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!(reference = %event.reference, "the audit hook panicked; the panic was caught");
            }
        }
    }

    pub(crate) fn default_ttl(&self) -> Duration {
        self.config.cache.ttl
    }
}

impl Drop for CacheCore {
    fn drop(&mut self) {
        // Wakes the refreshers so they end, and wipes values still cached.
        self.close();
    }
}

fn remove_entry(table: &mut Table, entry: &Arc<Entry>) {
    if table
        .entries
        .get(&entry.key)
        .is_some_and(|existing| Arc::ptr_eq(existing, entry))
    {
        table.entries.remove(&entry.key);
    }
    for raw in entry.take_routes() {
        let same = table
            .routes
            .get(&*raw)
            .is_some_and(|route| Arc::ptr_eq(&route.entry, entry));
        if same {
            table.routes.remove(&*raw);
        }
    }
}

#[cfg(test)]
mod tests;
