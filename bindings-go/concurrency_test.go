package keystead_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"keystead.dev/keystead"
)

func TestManyGoroutinesShareOneClient(t *testing.T) {
	const goroutines = 32
	const iterations = 200
	name := runPrefix + "concurrent/aws"
	createSecret(t, name, "from-aws")
	values := map[string]string{"aws-sm://" + name: "from-aws"}
	for index := range 4 {
		variable := fmt.Sprintf("KEYSTEAD_GO_CONCURRENT_%d", index)
		t.Setenv(variable, fmt.Sprintf("value-%d", index))
		values["env://"+variable] = fmt.Sprintf("value-%d", index)
	}
	references := make([]string, 0, len(values))
	for reference := range values {
		references = append(references, reference)
	}
	for worker := range goroutines {
		t.Setenv(fmt.Sprintf("KEYSTEAD_GO_CONCURRENT_OWN_%d", worker), "own")
	}
	client := newClient(t)

	var wait sync.WaitGroup
	for worker := range goroutines {
		wait.Add(1)
		own := fmt.Sprintf("env://KEYSTEAD_GO_CONCURRENT_OWN_%d", worker)
		go func() {
			defer wait.Done()
			for iteration := range iterations {
				reference := references[(worker+iteration)%len(references)]
				secret, err := client.Get(context.Background(), reference)
				if err != nil {
					t.Errorf("Get(%s): %v", reference, err)
					return
				}
				if got := secret.Reveal(); got != values[reference] {
					t.Errorf("Get(%s) = %q", reference, got)
					return
				}
				switch iteration % 50 {
				case 7:
					// Each worker invalidates a reference of its own:
					// invalidating an entry that another goroutine is
					// loading makes that load fail (a core behaviour,
					// not what this test is about).
					if _, err := client.Invalidate(own); err != nil {
						t.Errorf("Invalidate: %v", err)
					}
					if _, err := client.Get(context.Background(), own); err != nil {
						t.Errorf("Get(%s): %v", own, err)
					}
				case 13:
					_ = client.Metrics()
				case 29:
					_ = secret.Metadata()
				}
			}
		}()
	}
	wait.Wait()

	metrics := client.Metrics()
	// Every shared read and every read after an invalidation is a hit or
	// a miss.
	reads := uint64(goroutines*iterations + goroutines*(iterations/50))
	if metrics.Hits+metrics.Misses != reads {
		t.Errorf("hits %d + misses %d != %d reads", metrics.Hits, metrics.Misses, reads)
	}
}

func TestConcurrentMissesShareOneBackendCall(t *testing.T) {
	const goroutines = 16
	name := runPrefix + "concurrent/cold"
	createSecret(t, name, "cold")
	client := newClient(t)
	reference := "aws-sm://" + name

	start := make(chan struct{})
	var wait sync.WaitGroup
	for range goroutines {
		wait.Add(1)
		go func() {
			defer wait.Done()
			<-start
			secret, err := client.Get(context.Background(), reference)
			if err != nil {
				t.Errorf("Get: %v", err)
				return
			}
			if got := secret.Reveal(); got != "cold" {
				t.Errorf("Get = %q", got)
			}
		}()
	}
	close(start)
	wait.Wait()

	if calls := client.Metrics().BackendCalls; calls != 1 {
		t.Errorf("BackendCalls = %d, want 1", calls)
	}
}

func TestManyClientsOpenAndClose(t *testing.T) {
	t.Setenv("KEYSTEAD_GO_CLIENTS", "c")
	var wait sync.WaitGroup
	for range 8 {
		wait.Add(1)
		go func() {
			defer wait.Done()
			client, err := keystead.New(context.Background(), keystead.Config{})
			if err != nil {
				t.Errorf("New: %v", err)
				return
			}
			defer client.Close()
			if _, err := client.Get(context.Background(), "env://KEYSTEAD_GO_CLIENTS"); err != nil {
				t.Errorf("Get: %v", err)
			}
		}()
	}
	wait.Wait()
}
