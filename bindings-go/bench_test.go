package keystead_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"keystead.dev/keystead"
)

// benchmarkSink keeps the compiler from removing the reads being measured.
var benchmarkSink string

// BenchmarkMapLookup is the floor: a plain Go map lookup of a string value
// by its reference.
func BenchmarkMapLookup(b *testing.B) {
	values := map[string]string{}
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "bench"} {
		values["aws-sm://"+runPrefix+name] = "value-" + name
	}
	reference := "aws-sm://" + runPrefix + "bench"
	for b.Loop() {
		benchmarkSink = values[reference]
	}
}

var benchmarkRuns atomic.Int64

// warmClient creates a client, a moto secret, and reads it once so that
// the benchmark measures cache hits.
func warmClient(b *testing.B) (*keystead.Client, string) {
	b.Helper()
	// Benchmark functions run several times with growing b.N, so each run
	// makes its own secret.
	name := fmt.Sprintf("%sbench/%s/%d", runPrefix, b.Name(), benchmarkRuns.Add(1))
	createSecret(b, name, "benchmark-value")
	client := newClient(b)
	reference := "aws-sm://" + name
	if _, err := client.Get(context.Background(), reference); err != nil {
		b.Fatal(err)
	}
	return client, reference
}

// BenchmarkGetWarm is a warm Get followed by Reveal, the read a caller
// makes to use the value.
func BenchmarkGetWarm(b *testing.B) {
	client, reference := warmClient(b)
	ctx := context.Background()
	for b.Loop() {
		secret, err := client.Get(ctx, reference)
		if err != nil {
			b.Fatal(err)
		}
		benchmarkSink = secret.Reveal()
	}
}

// BenchmarkGetWarmNoReveal is a warm Get alone.
func BenchmarkGetWarmNoReveal(b *testing.B) {
	client, reference := warmClient(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := client.Get(ctx, reference); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetWarmParallel is BenchmarkGetWarm from GOMAXPROCS goroutines.
func BenchmarkGetWarmParallel(b *testing.B) {
	client, reference := warmClient(b)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		var value string
		for pb.Next() {
			secret, err := client.Get(ctx, reference)
			if err != nil {
				b.Error(err)
				return
			}
			value = secret.Reveal()
		}
		benchmarkSink = value
	})
}
