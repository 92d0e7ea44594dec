//! The metrics snapshot as a plain C struct.

use keystead::{MetricsSnapshot, LOAD_LATENCY_BUCKETS};

use crate::status::{Status, KEYSTEAD_STATUS_COUNT};

/// Number of load latency buckets: one per bound returned by
/// `keystead_load_latency_bucket_bound_us`, plus one for slower loads.
pub const KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT: usize = 11;

const _: () = assert!(LOAD_LATENCY_BUCKETS.len() + 1 == KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT);

/// A point-in-time copy of a client's counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Reads served from the cache with a fresh value.
    pub hits: u64,
    /// Reads that had to wait for a load.
    pub misses: u64,
    /// Background and explicit refreshes started.
    pub refreshes: u64,
    /// Reads served with a value past its TTL while the backend was
    /// failing or a refresh was still running.
    pub stale_serves: u64,
    /// Provider calls made; a batch call counts once.
    pub backend_calls: u64,
    /// Refreshes that found a new version.
    pub rotations: u64,
    /// Values removed for space, by invalidation, or past maximum staleness.
    pub evictions: u64,
    /// References currently cached.
    pub entries: u64,
    /// Failed loads, indexed by status: `errors[KEYSTEAD_STATUS_NOT_FOUND]`
    /// counts not-found failures. `errors[KEYSTEAD_STATUS_OK]` is always 0.
    pub errors: [u64; KEYSTEAD_STATUS_COUNT],
    /// Loads per latency bucket; see `keystead_load_latency_bucket_bound_us`.
    pub load_latency_buckets: [u64; KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT],
    /// Sum of all load latencies, in microseconds.
    pub load_latency_sum_us: u64,
    /// Number of loads timed.
    pub load_count: u64,
}

impl Metrics {
    pub(crate) fn new(snapshot: &MetricsSnapshot) -> Metrics {
        let mut metrics = Metrics {
            hits: snapshot.hits,
            misses: snapshot.misses,
            refreshes: snapshot.refreshes,
            stale_serves: snapshot.stale_serves,
            backend_calls: snapshot.backend_calls,
            rotations: snapshot.rotations,
            evictions: snapshot.evictions,
            entries: u64::try_from(snapshot.entries).unwrap_or(u64::MAX),
            load_latency_sum_us: u64::try_from(snapshot.load_latency_sum.as_micros())
                .unwrap_or(u64::MAX),
            load_count: snapshot.load_count,
            ..Metrics::default()
        };
        for (class, count) in &snapshot.errors {
            metrics.errors[Status::from_class(*class) as usize] += count;
        }
        for (slot, count) in metrics
            .load_latency_buckets
            .iter_mut()
            .zip(&snapshot.load_latency_buckets)
        {
            *slot = *count;
        }
        metrics
    }
}

/// Returns the upper bound, in microseconds, of load latency bucket `index`.
/// The last bucket has no bound and returns `UINT64_MAX`, as does an index
/// past the last bucket.
#[no_mangle]
pub extern "C" fn keystead_load_latency_bucket_bound_us(index: usize) -> u64 {
    match LOAD_LATENCY_BUCKETS.get(index) {
        Some(bound) => u64::try_from(bound.as_micros()).unwrap_or(u64::MAX),
        None => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keystead::ErrorClass;

    use super::*;

    #[test]
    fn errors_are_indexed_by_status() {
        let mut snapshot = MetricsSnapshot::default();
        snapshot.hits = 3;
        snapshot.entries = 2;
        snapshot.errors = vec![(ErrorClass::NotFound, 4), (ErrorClass::Unavailable, 1)];
        snapshot.load_latency_buckets = vec![1; KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT];
        snapshot.load_latency_sum = Duration::from_millis(12);
        snapshot.load_count = 11;
        let metrics = Metrics::new(&snapshot);
        assert_eq!(metrics.hits, 3);
        assert_eq!(metrics.entries, 2);
        assert_eq!(metrics.errors[Status::NotFound as usize], 4);
        assert_eq!(metrics.errors[Status::Unavailable as usize], 1);
        assert_eq!(metrics.errors[Status::Ok as usize], 0);
        assert_eq!(
            metrics.load_latency_buckets,
            [1; KEYSTEAD_LOAD_LATENCY_BUCKET_COUNT]
        );
        assert_eq!(metrics.load_latency_sum_us, 12_000);
    }

    #[test]
    fn bucket_bounds_follow_core() {
        assert_eq!(keystead_load_latency_bucket_bound_us(0), 1_000);
        assert_eq!(keystead_load_latency_bucket_bound_us(9), 10_000_000);
        assert_eq!(keystead_load_latency_bucket_bound_us(10), u64::MAX);
    }
}
