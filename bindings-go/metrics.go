package keystead

// #include "keystead.h"
import "C"

import (
	"math"
	"time"
)

// Metrics is a point-in-time copy of a client's counters.
type Metrics struct {
	// Hits counts reads served from the cache with a fresh value.
	Hits uint64
	// Misses counts reads that had to wait for a load.
	Misses uint64
	// Refreshes counts background and explicit refreshes started.
	Refreshes uint64
	// StaleServes counts reads served with a value past its TTL while
	// the backend was failing or a refresh was still running.
	StaleServes uint64
	// BackendCalls counts provider calls; a batch call counts once.
	BackendCalls uint64
	// Rotations counts refreshes that found a new version.
	Rotations uint64
	// Evictions counts values removed for space, by invalidation, or past
	// maximum staleness.
	Evictions uint64
	// Entries is the number of references currently cached.
	Entries uint64
	// Errors counts failed loads by class; classes without failures are
	// absent.
	Errors map[Class]uint64
	// LoadLatency is the load latency histogram, fastest bucket first.
	LoadLatency []LatencyBucket
	// LoadLatencySum is the sum of all load latencies.
	LoadLatencySum time.Duration
	// LoadCount is the number of loads timed.
	LoadCount uint64
}

// LatencyBucket is one bucket of the load latency histogram.
type LatencyBucket struct {
	// UpperBound is the slowest load the bucket counts; zero for the last
	// bucket, which counts every slower load.
	UpperBound time.Duration
	// Count is the number of loads in this bucket (not cumulative).
	Count uint64
}

func newMetrics(snapshot *C.keystead_metrics) Metrics {
	metrics := Metrics{
		Hits:           uint64(snapshot.hits),
		Misses:         uint64(snapshot.misses),
		Refreshes:      uint64(snapshot.refreshes),
		StaleServes:    uint64(snapshot.stale_serves),
		BackendCalls:   uint64(snapshot.backend_calls),
		Rotations:      uint64(snapshot.rotations),
		Evictions:      uint64(snapshot.evictions),
		Entries:        uint64(snapshot.entries),
		Errors:         map[Class]uint64{},
		LoadLatencySum: time.Duration(snapshot.load_latency_sum_us) * time.Microsecond,
		LoadCount:      uint64(snapshot.load_count),
	}
	for status, count := range snapshot.errors {
		if count > 0 {
			metrics.Errors[Class(status)] = uint64(count)
		}
	}
	for index, count := range snapshot.load_latency_buckets {
		bound := uint64(C.keystead_load_latency_bucket_bound_us(C.size_t(index)))
		bucket := LatencyBucket{Count: uint64(count)}
		if bound != math.MaxUint64 {
			bucket.UpperBound = time.Duration(bound) * time.Microsecond
		}
		metrics.LoadLatency = append(metrics.LoadLatency, bucket)
	}
	return metrics
}
