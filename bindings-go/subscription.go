package keystead

// #include "keystead.h"
// keystead_status keystead_go_subscribe(const keystead_client *client, const char *reference,
//     size_t reference_length, uintptr_t subscription, keystead_subscription **out, keystead_error **error);
import "C"

import (
	"errors"
	"runtime"
	"runtime/cgo"
	"sync"
)

// RotationEvent reports a new version of a subscribed reference.
type RotationEvent struct {
	// Reference is the reference as passed to [Client.Subscribe].
	Reference string
	// Secret is the new value (its field, when the reference has one), or
	// nil when selecting the field failed.
	Secret *Secret
	// Err is the error selecting the field produced, or nil.
	Err error
}

// Subscription is a live subscription to rotations. [Subscription.Close]
// ends it; [Client.Close] ends every subscription of the client.
type Subscription struct {
	client   *Client
	callback func(RotationEvent)
	handle   *C.keystead_subscription
	registry cgo.Handle

	mu      sync.Mutex
	pending []RotationEvent
	wake    chan struct{}
	done    chan struct{}

	closeOnce sync.Once
}

// Subscribe calls callback once for every new version of reference (the
// first load is not a rotation), for example to rebuild a connection pool
// when a password rotates. A subscribed reference is refreshed in the
// background even when no caller reads it.
//
// The callback runs on a goroutine that the subscription owns, one event
// at a time and in the order the versions were found. It may block: events
// queue meanwhile, and keystead's own threads never wait for it. Closing
// the subscription drops events not yet delivered; a callback already
// running finishes.
func (c *Client) Subscribe(reference string, callback func(RotationEvent)) (*Subscription, error) {
	if callback == nil {
		// Caught here, because a nil callback would panic later on the
		// delivery goroutine, where the caller cannot recover it.
		return nil, errors.New("keystead: Subscribe needs a non-nil callback")
	}
	subscription := &Subscription{
		client:   c,
		callback: callback,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	subscription.registry = cgo.NewHandle(subscription)

	referenceText, referenceLength := cString(reference)
	var handle *C.keystead_subscription
	var failure *C.keystead_error
	status := C.keystead_go_subscribe(c.handle, referenceText, referenceLength,
		C.uintptr_t(subscription.registry), &handle, &failure)
	runtime.KeepAlive(reference)
	runtime.KeepAlive(c)
	if status != C.KEYSTEAD_STATUS_OK {
		subscription.registry.Delete()
		return nil, takeError(failure, nil)
	}
	subscription.handle = handle

	c.mu.Lock()
	if c.closed {
		// Close ran while the subscription was being set up.
		c.mu.Unlock()
		subscription.Close()
		return nil, newError(ClassClosed, reference, "the client is closed", nil)
	}
	c.subscriptions[subscription] = struct{}{}
	c.mu.Unlock()
	go subscription.deliver()
	return subscription, nil
}

// Close ends the subscription. It is safe to call more than once, and from
// inside the callback.
func (s *Subscription) Close() {
	s.closeOnce.Do(func() {
		// Returns once no C callback for this subscription is running, so
		// the registry handle can be deleted safely afterwards.
		C.keystead_subscription_free(s.handle)
		s.registry.Delete()
		close(s.done)

		s.client.mu.Lock()
		delete(s.client.subscriptions, s)
		s.client.mu.Unlock()
	})
}

// push queues an event from a Rust worker thread. It never blocks on the
// callback.
func (s *Subscription) push(event RotationEvent) {
	s.mu.Lock()
	s.pending = append(s.pending, event)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) deliver() {
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if len(s.pending) == 0 {
				s.mu.Unlock()
				break
			}
			event := s.pending[0]
			s.pending[0] = RotationEvent{}
			s.pending = s.pending[1:]
			s.mu.Unlock()

			select {
			case <-s.done:
				return
			default:
			}
			s.callback(event)
		}
	}
}
