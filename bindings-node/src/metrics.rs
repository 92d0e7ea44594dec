//! The metrics snapshot as a plain JavaScript object.

use std::collections::HashMap;

use napi_derive::napi;

use keystead::MetricsSnapshot;

/// A point-in-time copy of the client's cache counters.
///
/// Counters are JavaScript numbers, exact up to 2^53.
#[napi(object, object_from_js = false)]
pub struct Metrics {
    /// Reads served from the cache with a fresh value.
    pub hits: f64,
    /// Reads that had to wait for a load.
    pub misses: f64,
    /// Background and explicit refreshes started.
    pub refreshes: f64,
    /// Reads served with a value past its TTL while the backend was
    /// failing or a refresh was still running.
    pub stale_serves: f64,
    /// Provider calls made; a batch call counts once.
    pub backend_calls: f64,
    /// Refreshes that found a new version.
    pub rotations: f64,
    /// Values removed for space, by invalidation, or past maximum staleness.
    pub evictions: f64,
    /// References currently cached.
    pub entries: f64,
    /// Failed loads by error class name (`"not-found"`, ...); classes with
    /// no failures are left out.
    pub errors: HashMap<String, f64>,
    /// Load counts per latency bucket, slowest bucket last.
    pub load_latency_buckets: Vec<f64>,
    /// Sum of all load latencies, in milliseconds.
    pub load_latency_sum_ms: f64,
    /// Number of loads timed.
    pub load_count: f64,
}

impl From<MetricsSnapshot> for Metrics {
    fn from(snapshot: MetricsSnapshot) -> Metrics {
        // u64 to f64 is exact below 2^53, far above any counter here.
        let number = |count: u64| count as f64;
        Metrics {
            hits: number(snapshot.hits),
            misses: number(snapshot.misses),
            refreshes: number(snapshot.refreshes),
            stale_serves: number(snapshot.stale_serves),
            backend_calls: number(snapshot.backend_calls),
            rotations: number(snapshot.rotations),
            evictions: number(snapshot.evictions),
            entries: snapshot.entries as f64,
            errors: snapshot
                .errors
                .iter()
                .map(|(class, count)| (class.as_str().to_owned(), number(*count)))
                .collect(),
            load_latency_buckets: snapshot
                .load_latency_buckets
                .iter()
                .copied()
                .map(number)
                .collect(),
            load_latency_sum_ms: snapshot.load_latency_sum.as_secs_f64() * 1000.0,
            load_count: number(snapshot.load_count),
        }
    }
}
