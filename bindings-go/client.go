package keystead

// #include <stdlib.h>
// #include "keystead.h"
import "C"

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// closeTimeout bounds how long [Client.Close] waits for lease revocations
// at the backends. A revocation is one HTTP call per lease; ten seconds
// covers a slow backend without letting shutdown hang.
const closeTimeout = 10 * time.Second

// Client is a cached, auto-refreshing secret client backed by the Rust
// core. It is safe for use by many goroutines at once. Create it with
// [New], [NewFromFile] or [NewFromEnv], and [Client.Close] it when done.
//
// Calls that may wait for a backend (Get, Refresh, Prefetch) take a
// context: its deadline becomes the call's time limit, and cancelling it
// aborts the wait. Calls that never wait (Invalidate, Subscribe, Metrics)
// take none. A goroutine blocked in a call occupies its OS thread, as with
// any cgo call.
type Client struct {
	handle *C.keystead_client

	closeOnce sync.Once
	closeErr  error

	latest latestSecrets

	mu            sync.Mutex
	closed        bool
	subscriptions map[*Subscription]struct{}
}

// New creates a client from a [Config]. No backend is contacted, so ctx is
// only checked before the client is created.
func New(ctx context.Context, config Config) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError("", err)
	}
	text, err := config.encode()
	if err != nil {
		return nil, newError(ClassConfig, "", "cannot encode the configuration: "+err.Error(), nil)
	}
	configText := C.CBytes(text)
	defer func() {
		// The configuration may hold a Vault token.
		clear(unsafe.Slice((*byte)(configText), len(text)))
		C.free(configText)
		clear(text)
	}()

	var handle *C.keystead_client
	var failure *C.keystead_error
	status := C.keystead_client_new((*C.char)(configText), C.size_t(len(text)), &handle, &failure)
	if status != C.KEYSTEAD_STATUS_OK {
		return nil, takeError(failure, nil)
	}
	return newClient(handle), nil
}

// NewFromFile creates a client from a keystead.toml file. Errors name the
// file, and the key and line where it is wrong.
func NewFromFile(path string) (*Client, error) {
	pathText, pathLength := cString(path)
	var handle *C.keystead_client
	var failure *C.keystead_error
	status := C.keystead_client_new_from_file(pathText, pathLength, &handle, &failure)
	runtime.KeepAlive(path)
	if status != C.KEYSTEAD_STATUS_OK {
		return nil, takeError(failure, nil)
	}
	return newClient(handle), nil
}

// NewFromEnv creates a client from the keystead.toml named by the
// KEYSTEAD_CONFIG environment variable, or with the defaults when it is
// unset.
func NewFromEnv() (*Client, error) {
	var handle *C.keystead_client
	var failure *C.keystead_error
	status := C.keystead_client_new(nil, 0, &handle, &failure)
	if status != C.KEYSTEAD_STATUS_OK {
		return nil, takeError(failure, nil)
	}
	return newClient(handle), nil
}

func newClient(handle *C.keystead_client) *Client {
	client := &Client{handle: handle, subscriptions: map[*Subscription]struct{}{}}
	// The C handle is freed only once no goroutine can reach the client, so
	// no call can be using it. Every method keeps the client alive until
	// its C call returns.
	runtime.AddCleanup(client, freeClient, handle)
	return client
}

func freeClient(handle *C.keystead_client) {
	C.keystead_client_free(handle)
}

// Get reads a reference, from the cache when the value is fresh.
//
// A warm read takes no lock that a load holds and does no I/O. On a miss
// the value is loaded once, however many goroutines ask at the same
// moment. When the backend fails transiently and a value within its
// MaxStale is cached, that value is returned. After an authoritative
// failure (not found, access denied, deleted) the error is returned and
// repeated until its backoff ends.
//
// When ctx is cancelled or its deadline passes first, Get returns an
// [*Error] of class ClassUnavailable that also matches ctx.Err() with
// [errors.Is]; the load keeps running, so a later Get may find its result.
func (c *Client) Get(ctx context.Context, reference string) (*Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(reference, err)
	}
	if secret := c.cached(reference); secret != nil {
		return secret, nil
	}
	return c.load(ctx, reference, loadGet)
}

// cached returns the fresh cached value, or nil. When it is the version
// last returned for this reference, it returns that same *Secret.
func (c *Client) cached(reference string) *Secret {
	known := c.latest.load(reference)
	var knownHandle *C.keystead_secret
	if known != nil {
		knownHandle = known.handle
	}
	referenceText, referenceLength := cString(reference)
	handle := C.keystead_get_cached(c.handle, referenceText, referenceLength, knownHandle)
	runtime.KeepAlive(reference)
	runtime.KeepAlive(known)
	runtime.KeepAlive(c)
	switch {
	case handle == nil:
		return nil
	case handle == knownHandle:
		return known
	default:
		return newLatestSecret(handle, &c.latest, reference)
	}
}

// Refresh loads a reference from its backend now, without waiting for the
// TTL or an error backoff; a load already in flight is shared. When the
// load fails, the cached value is kept unless the failure is authoritative,
// and the error is returned.
func (c *Client) Refresh(ctx context.Context, reference string) (*Secret, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError(reference, err)
	}
	return c.load(ctx, reference, loadRefresh)
}

type loadKind int

const (
	loadGet loadKind = iota
	loadRefresh
)

func (c *Client) load(ctx context.Context, reference string, kind loadKind) (*Secret, error) {
	referenceText, referenceLength := cString(reference)
	var secret *C.keystead_secret
	var failure *C.keystead_error
	status, cause := blockingCall(ctx, func(timeoutMs C.uint64_t, token *C.keystead_cancel_token) C.keystead_status {
		if kind == loadRefresh {
			return C.keystead_refresh(c.handle, referenceText, referenceLength, timeoutMs, token, &secret, &failure)
		}
		return C.keystead_get(c.handle, referenceText, referenceLength, timeoutMs, token, &secret, &failure)
	})
	runtime.KeepAlive(reference)
	runtime.KeepAlive(c)
	if status != C.KEYSTEAD_STATUS_OK {
		return nil, callError(status, failure, cause, reference)
	}
	return newLatestSecret(secret, &c.latest, reference), nil
}

// Invalidate drops a reference's cached value (and every field of it) and
// wipes it. It reports whether a value was cached.
func (c *Client) Invalidate(reference string) (bool, error) {
	referenceText, referenceLength := cString(reference)
	var wasCached C.bool
	var failure *C.keystead_error
	status := C.keystead_invalidate(c.handle, referenceText, referenceLength, &wasCached, &failure)
	runtime.KeepAlive(reference)
	runtime.KeepAlive(c)
	if status != C.KEYSTEAD_STATUS_OK {
		return false, takeError(failure, nil)
	}
	return bool(wasCached), nil
}

// Prefetch loads several references at once, using each backend's batch
// call where it has one (Secrets Manager BatchGetSecretValue, SSM
// GetParameters). References already fresh or loading are left alone.
//
// It returns nil when every reference is cached. Otherwise it returns the
// failures joined with [errors.Join]: one [*Error] per failed reference,
// each naming its reference. When ctx ends first, or the client is closed,
// it returns that one error instead.
func (c *Client) Prefetch(ctx context.Context, references ...string) error {
	if err := ctx.Err(); err != nil {
		return contextError("", err)
	}
	if len(references) == 0 {
		return nil
	}

	// The C function reads an array of pointers, which must live in C
	// memory because it holds pointers.
	count := len(references)
	pointers := unsafe.Slice((**C.char)(C.calloc(C.size_t(count), C.size_t(unsafe.Sizeof((*C.char)(nil))))), count)
	lengths := make([]C.size_t, count)
	defer func() {
		for _, pointer := range pointers {
			C.free(unsafe.Pointer(pointer))
		}
		C.free(unsafe.Pointer(&pointers[0]))
	}()
	for index, reference := range references {
		pointers[index] = C.CString(reference)
		lengths[index] = C.size_t(len(reference))
	}
	statuses := make([]C.keystead_status, count)
	failures := make([]*C.keystead_error, count)

	var failure *C.keystead_error
	status, cause := blockingCall(ctx, func(timeoutMs C.uint64_t, token *C.keystead_cancel_token) C.keystead_status {
		return C.keystead_prefetch(c.handle, &pointers[0], &lengths[0], C.size_t(count), timeoutMs, token,
			&statuses[0], &failures[0], &failure)
	})
	runtime.KeepAlive(c)
	if status != C.KEYSTEAD_STATUS_OK {
		return callError(status, failure, cause, "")
	}

	var errs []error
	for index := range references {
		if statuses[index] != C.KEYSTEAD_STATUS_OK {
			errs = append(errs, takeError(failures[index], nil))
		}
	}
	return errors.Join(errs...)
}

// Metrics returns a snapshot of the client's counters.
func (c *Client) Metrics() Metrics {
	var snapshot C.keystead_metrics
	status := C.keystead_client_metrics(c.handle, &snapshot, nil)
	runtime.KeepAlive(c)
	if status != C.KEYSTEAD_STATUS_OK {
		return Metrics{}
	}
	return newMetrics(&snapshot)
}

// Close closes the client: calls in flight return ErrClosed, background
// refreshes stop, subscriptions end, every cached value is wiped, and Close
// waits up to ten seconds for lease revocations at the backends. Later
// calls fail with ErrClosed. Secrets already returned stay readable. Calling
// Close again does nothing and returns the first call's result.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		subscriptions := make([]*Subscription, 0, len(c.subscriptions))
		for subscription := range c.subscriptions {
			subscriptions = append(subscriptions, subscription)
		}
		c.mu.Unlock()
		for _, subscription := range subscriptions {
			subscription.Close()
		}

		status := C.keystead_client_close(c.handle, C.uint64_t(closeTimeout/time.Millisecond))
		runtime.KeepAlive(c)
		if status != C.KEYSTEAD_STATUS_OK {
			c.closeErr = newError(Class(status), "", "closing the client failed", nil)
		}
	})
	return c.closeErr
}
