//! Counters the cache keeps, and the snapshot callers read.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::ErrorClass;

/// Upper bounds of the load latency histogram buckets; the last bucket
/// counts everything slower.
pub const LOAD_LATENCY_BUCKETS: [Duration; 10] = [
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(1000),
    Duration::from_millis(2500),
    Duration::from_millis(10_000),
];

const STRIPES: usize = 16;

/// A counter split over cache lines, so that hits on many threads do not
/// all write one line.
#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [PaddedCounter; STRIPES],
}

#[derive(Default)]
#[repr(align(64))]
struct PaddedCounter(AtomicU64);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

fn stripe_index() -> usize {
    STRIPE.with(|cell| {
        let index = cell.get();
        if index != usize::MAX {
            return index;
        }
        let index = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
        cell.set(index);
        index
    })
}

impl StripedCounter {
    pub(crate) fn increment(&self) {
        self.stripes[stripe_index()].0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// The cache's live counters.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) hits: StripedCounter,
    pub(crate) misses: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) stale_serves: AtomicU64,
    pub(crate) backend_calls: AtomicU64,
    pub(crate) rotations: AtomicU64,
    pub(crate) evictions: AtomicU64,
    errors: [AtomicU64; ErrorClass::ALL.len()],
    latency_buckets: [AtomicU64; LOAD_LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    latency_count: AtomicU64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_error(&self, class: ErrorClass) {
        self.errors[class.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_load_latency(&self, elapsed: Duration) {
        let bucket = LOAD_LATENCY_BUCKETS
            .iter()
            .position(|bound| elapsed <= *bound)
            .unwrap_or(LOAD_LATENCY_BUCKETS.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, entries: usize) -> MetricsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        MetricsSnapshot {
            hits: self.hits.sum(),
            misses: load(&self.misses),
            refreshes: load(&self.refreshes),
            stale_serves: load(&self.stale_serves),
            backend_calls: load(&self.backend_calls),
            rotations: load(&self.rotations),
            evictions: load(&self.evictions),
            entries,
            errors: ErrorClass::ALL
                .into_iter()
                .map(|class| (class, load(&self.errors[class.index()])))
                .filter(|(_, count)| *count > 0)
                .collect(),
            load_latency_buckets: self.latency_buckets.iter().map(load).collect(),
            load_latency_sum: Duration::from_micros(load(&self.latency_sum_micros)),
            load_count: load(&self.latency_count),
        }
    }
}

/// A point-in-time copy of the cache's counters.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Reads answered from the cache with a fresh value.
    pub hits: u64,
    /// Reads that had to wait for a load.
    pub misses: u64,
    /// Background and explicit refreshes started.
    pub refreshes: u64,
    /// Reads answered with a value past its TTL while the backend was
    /// failing or a refresh was still running.
    pub stale_serves: u64,
    /// Provider calls made (a batch call counts once).
    pub backend_calls: u64,
    /// Refreshes that found a new version.
    pub rotations: u64,
    /// Values removed for space, by invalidation, or past maximum staleness.
    pub evictions: u64,
    /// References currently cached.
    pub entries: usize,
    /// Failed loads by error class; classes with no failures are left out.
    pub errors: Vec<(ErrorClass, u64)>,
    /// Load latency counts per bucket of [`LOAD_LATENCY_BUCKETS`], plus one
    /// last bucket for slower loads.
    pub load_latency_buckets: Vec<u64>,
    /// Sum of all load latencies.
    pub load_latency_sum: Duration,
    /// Number of loads timed.
    pub load_count: u64,
}

impl MetricsSnapshot {
    /// Failed loads of one class.
    pub fn errors_of(&self, class: ErrorClass) -> u64 {
        self.errors
            .iter()
            .find(|(counted, _)| *counted == class)
            .map_or(0, |(_, count)| *count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_its_bucket() {
        let metrics = Metrics::default();
        metrics.record_load_latency(Duration::from_millis(7));
        metrics.record_load_latency(Duration::from_secs(60));
        let snapshot = metrics.snapshot(0);
        assert_eq!(snapshot.load_latency_buckets[2], 1);
        assert_eq!(snapshot.load_latency_buckets[LOAD_LATENCY_BUCKETS.len()], 1);
        assert_eq!(snapshot.load_count, 2);
        assert_eq!(snapshot.load_latency_sum, Duration::from_millis(60_007));
    }

    #[test]
    fn striped_counter_sums_threads() {
        let counter = std::sync::Arc::new(StripedCounter::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.increment()))
            })
            .collect();
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        assert_eq!(counter.sum(), 4000);
    }
}
