package keystead

import (
	"sync"
	"sync/atomic"
	"weak"
)

// latestSecrets remembers, per reference, the last *Secret a client
// returned, through a weak pointer. A warm Get passes that Secret's handle
// to the core, which reports whether its cached value is still that very
// version. When it is, Get returns the same *Secret without allocating.
// The core decides freshness on every call: this table never returns a
// Secret the core has not just confirmed, and it keeps no Secret alive.
//
// Readers take no lock: the map is replaced, never changed, so a read is
// an atomic load and a map lookup. Writes copy the map; they happen once
// per new version of a reference and when a remembered Secret is
// collected.
type latestSecrets struct {
	mu      sync.Mutex
	current atomic.Pointer[map[string]weak.Pointer[Secret]]
}

// load returns the remembered Secret for reference, or nil.
func (l *latestSecrets) load(reference string) *Secret {
	current := l.current.Load()
	if current == nil {
		return nil
	}
	pointer, found := (*current)[reference]
	if !found {
		return nil
	}
	return pointer.Value()
}

// store remembers secret as the latest for reference.
func (l *latestSecrets) store(reference string, secret weak.Pointer[Secret]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.copyCurrent(1)
	next[reference] = secret
	l.current.Store(&next)
}

// forget drops reference's entry if it still remembers secret, which the
// garbage collector has just reclaimed.
func (l *latestSecrets) forget(reference string, secret weak.Pointer[Secret]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	current := l.current.Load()
	if current == nil || (*current)[reference] != secret {
		return
	}
	next := l.copyCurrent(0)
	delete(next, reference)
	l.current.Store(&next)
}

func (l *latestSecrets) copyCurrent(extra int) map[string]weak.Pointer[Secret] {
	current := l.current.Load()
	if current == nil {
		return make(map[string]weak.Pointer[Secret], extra)
	}
	next := make(map[string]weak.Pointer[Secret], len(*current)+extra)
	for reference, secret := range *current {
		next[reference] = secret
	}
	return next
}
